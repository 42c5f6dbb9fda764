// The numbers to beat (DESIGN §4, issue 6), judged on one run's results.
// Each target names what it compares and gives the measured value; a target
// whose case was skipped or failed is "n/a", one whose feature does not
// exist yet is "not measured yet".
import { fmtNs, fmtRatio } from './format.mjs';

const median = (results, id) => (results[id] && !results[id].error && !results[id].skipped ? results[id].median : undefined);

function judge(value, ok, show) {
  if (value === undefined || Number.isNaN(value)) return { measured: 'n/a (case skipped or failed)', mark: 'n/a', pass: null };
  return { measured: show(value), mark: ok(value) ? 'pass' : 'MISS', pass: ok(value) };
}

export function evaluateTargets(results) {
  const nofail = median(results, 'alloc-free/nofail');
  const buffer = median(results, 'baseline/Buffer.allocUnsafe');
  const scale = (impl) => {
    const one = median(results, `workers/${impl}/1`);
    const two = median(results, `workers/${impl}/2`);
    return one && two ? two / one : undefined;
  };
  const others = `naive pool ${fmtRatio(scale('naive'))}, Buffer.allocUnsafe ${fmtRatio(scale('Buffer.allocUnsafe'))}, pure compute ceiling ${fmtRatio(scale('compute'))}`;
  const bulk = results['bulk/allocBulk64+freeBulk'];
  const meta = results['meta/idle-pool-rss'];
  return [
    {
      target: 'order-0 alloc+free with bytes from JS >= 40x faster than Buffer.allocUnsafe(4096)',
      ...judge(nofail && buffer ? buffer / nofail : undefined, (x) => x >= 40, (x) => `${fmtRatio(x)} (${fmtNs(nofail)} vs ${fmtNs(buffer)})`),
    },
    {
      target: 'order-0 alloc+free from JS <= 30 ns (via pcp)',
      ...judge(nofail, (x) => x <= 30, fmtNs),
    },
    {
      target: '2 workers >= 1.7x the throughput of 1 worker',
      ...judge(scale('nofail'), (x) => x >= 1.7, (x) => `${fmtRatio(x)} (${others})`),
    },
    {
      target: 'native core order-0 alloc+free <= 20 ns (per-thread cache)',
      ...judge(
        median(results, 'native/core_bench'),
        (x) => x <= 20,
        (x) => `${fmtNs(x)} (the buddy directly: ${fmtNs(results['native/core_bench']?.direct)})`,
      ),
    },
    {
      target: 'allocBulk(64) <= 10 ns per page',
      ...judge(
        bulk?.allocBulk?.median,
        (x) => x <= 10,
        (x) => `${fmtNs(x)} (allocBulk+freeBulk ${fmtNs(bulk.median)} per page)`,
      ),
    },
    {
      target: 'per-page metadata <= 0.2% of the pool (idle 1 GiB pool, VmRSS)',
      ...judge(
        median(results, 'meta/idle-pool-rss'),
        (x) => x <= 0.2,
        (x) => `${x.toFixed(3)} % (${(meta.overheadBytes / 1024).toFixed(0)} KiB, ${meta.bytesPerPage.toFixed(2)} B/page)`,
      ),
    },
    {
      target: 'reservation take+release <= 100 ns uncontended',
      ...judge(median(results, 'reserve/take+release'), (x) => x <= 100, fmtNs),
    },
    {
      target: 'a blocked worker woken <= 200 µs p99 after another frees',
      ...judge(
        results['wakeup/free-to-waiter']?.p99,
        (x) => x <= 200,
        (x) => `p99 ${x.toFixed(0)} µs (p50 ${results['wakeup/free-to-waiter'].median.toFixed(0)} µs, max ${results['wakeup/free-to-waiter'].max.toFixed(0)} µs)`,
      ),
    },
  ];
}
