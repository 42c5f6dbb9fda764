// The numbers to beat (DESIGN §4, issue 13), judged on one run's results.
// Each target names what it compares and gives the measured value; a target
// whose case was skipped or failed is "n/a".
import { fmtNs, fmtRatio } from './format.mjs';

const ok = (r) => r !== undefined && !r.error && !r.skipped && r.median !== undefined;
/** ns per page of a result: single-thread cases give ns/op, worker cases pages/s. */
export function nsPerPage(r) {
  if (!ok(r)) return undefined;
  return r.unit === 'pages/s' ? 1e9 / r.median : r.median;
}

function judge(value, pass, show) {
  if (value === undefined || Number.isNaN(value)) return { measured: 'n/a (not run, skipped or failed)', mark: 'n/a', pass: null };
  return { measured: show(value), mark: pass(value) ? 'pass' : 'MISS', pass: pass(value) };
}

/**
 * The patterns of issue 13 item 1, each as [label, nofail case id, id of
 * the same pattern for another implementation].
 */
export function item1Patterns(results) {
  const list = [];
  for (const id of Object.keys(results)) {
    const p = /^pattern\/((?:burst|random)[^/]+)\/nofail$/.exec(id);
    if (p) list.push([p[1], (impl) => `pattern/${p[1]}/${impl}`]);
    const w = /^workers\/(working-set|handoff-split)\/nofail\/(\d+)$/.exec(id);
    if (w && (w[1] === 'handoff-split' || Number(w[2]) >= 2)) list.push([`${w[1]} x${w[2]}`, (impl) => `workers/${w[1]}/${impl}/${w[2]}`]);
  }
  return list;
}

/** "every pattern at least x times faster than impl": the worst ratio, and every pattern that misses. */
function everyPattern(results, impl, atLeast) {
  const rows = [];
  for (const [label, idOf] of item1Patterns(results)) {
    const mine = nsPerPage(results[idOf('nofail')]);
    const theirs = nsPerPage(results[idOf(impl)]);
    if (mine !== undefined && theirs !== undefined) rows.push({ label, x: theirs / mine });
  }
  if (rows.length === 0) return judge(undefined);
  rows.sort((a, b) => a.x - b.x);
  const misses = rows.filter((r) => r.x < atLeast);
  return judge(
    rows[0].x,
    (x) => x >= atLeast,
    () =>
      `worst ${fmtRatio(rows[0].x)} (${rows[0].label}); ${rows.length - misses.length} of ${rows.length} patterns pass` +
      (misses.length ? `; misses: ${misses.map((r) => `${r.label} ${fmtRatio(r.x)}`).join(', ')}` : ''),
  );
}

function scaling(results, pattern) {
  const ratio = (impl) => {
    const one = results[`workers/${pattern}/${impl}/1`];
    const two = results[`workers/${pattern}/${impl}/2`];
    return ok(one) && ok(two) ? two.median / one.median : undefined;
  };
  const compute = results['workers/compute/1'] && results['workers/compute/2'] && ok(results['workers/compute/1']) && ok(results['workers/compute/2'])
    ? results['workers/compute/2'].median / results['workers/compute/1'].median
    : undefined;
  const others = `pure compute ceiling ${fmtRatio(compute)}, naive pool ${fmtRatio(ratio('naive mutex pool'))}, @thi.ng/malloc ${fmtRatio(ratio('@thi.ng/malloc'))}, Buffer.allocUnsafe ${fmtRatio(ratio('Buffer.allocUnsafe'))}`;
  return judge(ratio('nofail'), (x) => x >= 1.7, (x) => `${fmtRatio(x)} (${others})`);
}

export function evaluateTargets(results) {
  const r = (id) => results[id];
  const bulk = r('bulk/allocBulk64');
  const meta = r('meta/idle-pool-rss');
  const wake = r('wakeup/free-to-waiter');
  const sizes = r('pool-size/64MiB-vs-64GiB');
  const perPage = (id, limit) => judge(nsPerPage(r(id)), (x) => x <= limit, fmtNs);
  return [
    { target: 'every pattern of item 1 >= 25x Buffer.allocUnsafe(4096)', ...everyPattern(results, 'Buffer.allocUnsafe', 25) },
    { target: 'every pattern of item 1 >= 2x @thi.ng/malloc', ...everyPattern(results, '@thi.ng/malloc', 2) },
    { target: 'burst of 512, LIFO <= 60 ns/page', ...perPage('pattern/burst512-lifo/nofail', 60) },
    { target: 'burst of 512, FIFO <= 60 ns/page', ...perPage('pattern/burst512-fifo/nofail', 60) },
    { target: 'random lifetimes, 1k live pages <= 60 ns per allocation', ...perPage('pattern/random1k/nofail', 60) },
    { target: 'hot page <= 30 ns', ...perPage('pattern/hot/nofail', 30) },
    {
      target: 'allocBulk <= 15 ns/page',
      ...judge(bulk?.allocBulk?.median, (x) => x <= 15, (x) => `${fmtNs(x)} (allocBulk(64) + write + freeBulk: ${fmtNs(bulk.median)} per page)`),
    },
    { target: 'reservation take+release <= 100 ns', ...perPage('reserve/take+release', 100) },
    { target: 'producer/consumer <= 150 ns per page handed over', ...perPage('workers/handoff-split/nofail/2', 150) },
    { target: '2 workers >= 1.7x 1 worker: working set', ...scaling(results, 'working-set') },
    { target: '2 workers >= 1.7x 1 worker: handoff (producer/consumer ring)', ...scaling(results, 'handoff-ring') },
    {
      target: 'wake-up after a free: p99 <= 500 µs',
      ...judge(wake?.p99, (x) => x <= 500, (x) => `p99 ${x.toFixed(0)} µs (p50 ${wake.median.toFixed(0)} µs, max ${wake.max.toFixed(0)} µs)`),
    },
    {
      target: 'native core order-0 alloc+free <= 20 ns (per-thread cache)',
      ...judge(ok(r('native/core_bench')) ? r('native/core_bench').median : undefined, (x) => x <= 20, (x) => `${fmtNs(x)} (the buddy directly: ${fmtNs(r('native/core_bench').direct)})`),
    },
    {
      target: 'per-page metadata <= 0.2% of the pool (idle 1 GiB pool, VmRSS)',
      ...judge(ok(meta) ? meta.median : undefined, (x) => x <= 0.2, (x) => `${x.toFixed(3)} % (${(meta.overheadBytes / 1024).toFixed(0)} KiB, ${meta.bytesPerPage.toFixed(2)} B/page)`),
    },
    { target: 'a 64 GiB pool costs what a 64 MiB one does (within 10%)', ...poolSizeTarget(sizes) },
  ];
}

/** cases/pool-size.mjs: its median is the worse ratio (large / small) of the hot page and the zone path. */
function poolSizeTarget(r) {
  if (!r || r.error || r.skipped) return { measured: `n/a${r ? `: ${(r.error ?? r.skipped).slice(0, 160)}` : ''}`, mark: 'n/a', pass: null };
  if (r.median === undefined) return { measured: `n/a: ${r.failed ?? 'nothing measured'}`.slice(0, 200), mark: 'n/a', pass: null };
  const shown = Object.entries(r.judged).map(([k, x]) => `${k} ${fmtRatio(x)}`).join(', ');
  const text = `worst ${fmtRatio(r.median)} (64 GiB / 64 MiB, measured in turns in one process: ${shown})${r.failed ? `; failed: ${r.failed.split(';')[0]}` : ''}`;
  return { measured: text, mark: r.median <= 1.1 ? 'pass' : 'MISS', pass: r.median <= 1.1 };
}
