// The example service's leak test (examples/service.mjs, node:http):
// drives it into memory pressure and checks what a service author needs to
// hold — no corrupted data end to end, every refusal a 503 with
// Retry-After, and nothing leaked, judged by what can leak: once the load
// stops no page is in flight, after dropping the cache no page is
// allocated, and the live JS heap after a forced GC is back near its level
// after a warm-up (a bound derived from the bytes the run moved, not from
// how fast the machine moved them). test/service/85-service.test.ts runs
// it with a fixed number of requests.
import { drive, getJson, rssKiB, startService } from './drive.mjs';

/**
 * Waits for the requests cut off when the load stopped to finish (or fail)
 * on their own: polls /debug/pool until no page is in flight, for up to
 * `ms`. Returns the last snapshot, whichever way it ended.
 */
async function settle(url, ms = 30_000) {
  const deadline = Date.now() + ms;
  let s = await getJson(`${url}/debug/pool`);
  while (s.inFlightPages !== 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    s = await getJson(`${url}/debug/pool`);
  }
  return s;
}

/** Folds the correctness tallies of two drives into one. */
function mergeTally(a, b) {
  const statuses = { ...a.statuses };
  for (const [k, v] of Object.entries(b.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
  return { statuses, corrupt: [...a.corrupt, ...b.corrupt], missingRetryAfter: a.missingRetryAfter + b.missingRetryAfter, checked: a.checked + b.checked };
}

/**
 * One policy's run: start the service, warm it up with `warmupRequests`,
 * drop its cache and take its live heap, drive it (`requests`, or
 * `seconds`), let it settle, drop the cache again and take the heap again;
 * check, report.
 */
export async function runPolicy({ policy, seconds, requests, warmupRequests = 500, connections, poolSize = '16MiB', budgetMs = 50, keys, maxBody }) {
  const svc = await startService(['--pool-size', poolSize, '--policy', policy, '--budget-ms', String(budgetMs)]);
  try {
    const rssStart = rssKiB(svc.pid);
    const load = { url: svc.url, pid: svc.pid, connections, keys, maxBody };
    // The warm-up brings the heap to its working size: code compiled, the
    // server's and the parsers' free lists filled, the pool's views made.
    // A number of requests, so that it is the same warm-up on any machine.
    const warm = await drive({ ...load, requests: warmupRequests, seed: 2 });
    const warmed = await settle(svc.url);
    await fetch(`${svc.url}/debug/drop-cache`, { method: 'POST' });
    const heapWarm = await svc.heap();
    const { tally, result, rssKiB: rss } = await drive({ ...load, seconds, requests });
    const after = await settle(svc.url);
    await fetch(`${svc.url}/debug/drop-cache`, { method: 'POST' });
    const dropped = await getJson(`${svc.url}/debug/pool`);
    const heapAfter = await svc.heap();
    const metricsText = await (await fetch(`${svc.url}/metrics`)).text();
    const all = mergeTally(warm.tally, tally);
    const total = Object.values(tally.statuses).reduce((a, b) => a + b, 0);
    const unexpected = Object.entries(all.statuses).filter(([s]) => !['200', '201', '404', '503'].includes(s));
    const bytesAdmitted = after.shed.bytes - warmed.shed.bytes;
    return {
      policy,
      requests: total,
      warmupRequests: Object.values(warm.tally.statuses).reduce((a, b) => a + b, 0),
      rps: result.requests.average,
      p50: result.latency.p50,
      p99: result.latency.p99,
      share503: total ? (tally.statuses[503] ?? 0) / total : 0,
      statuses: tally.statuses,
      // Correctness covers the warm-up too.
      unexpected,
      corrupt: all.corrupt,
      checked: all.checked,
      missingRetryAfter: all.missingRetryAfter,
      errors: warm.result.errors + result.errors,
      timeouts: warm.result.timeouts + result.timeouts,
      peakUsedPages: after.peakUsedPages,
      loopDelayMs: after.eventLoopDelayMs,
      totalPages: after.totalPages,
      rssStartMiB: rssStart / 1024,
      rssPeakMiB: Math.max(rssStart, ...rss) / 1024,
      heapWarmMiB: heapWarm / 2 ** 20,
      heapAfterMiB: heapAfter / 2 ** 20,
      heapGrowth: heapAfter - heapWarm,
      heapGrowthLimit: heapGrowthLimit(bytesAdmitted),
      bytesAdmitted,
      after,
      dropped,
      metricsText,
      shed: after.shed,
    };
  } finally {
    await svc.stop();
  }
}

/** The most the live heap may grow over a run, whatever it moved. */
export const HEAP_GROWTH_MAX_MIB = 8;
/** The least it may grow: well above the noise of a heap after GC. */
export const HEAP_GROWTH_MIN_MIB = 2;

/**
 * How far the live heap may end a run above its warm-up level, both
 * after a forced GC with the cache dropped: a tenth of the bytes admitted
 * during the run, within HEAP_GROWTH_MIN_MIB..HEAP_GROWTH_MAX_MIB. A server
 * that kept every body grows by all of them, ten times the bound or more
 * once HEAP_GROWTH_MIN_MIB * 10 were admitted (it measured 187 MiB over
 * 2500 requests, against a bound of 8); what is left under the bound is
 * the noise of a heap after GC (code compiled late, free lists, a few
 * sockets not yet closed): 6 to 300 KiB here. How much a run admits is not
 * fixed: under this much overload, a slow or busy machine refuses more.
 */
export function heapGrowthLimit(bytesAdmitted) {
  return Math.min(HEAP_GROWTH_MAX_MIB * 2 ** 20, Math.max(HEAP_GROWTH_MIN_MIB * 2 ** 20, bytesAdmitted / 10));
}

/**
 * What must hold after a run (the test asserts the same, one by one):
 * returns the broken ones as text. The leak verdict is pages and the live
 * heap; RSS is left out: it measures V8's heap sizing as much as what the
 * server keeps.
 */
export function checkRun(r) {
  const p = [];
  if (r.corrupt.length) p.push(`${r.corrupt.length} corrupted responses (${r.corrupt.slice(0, 3).join(' | ')})`);
  if (r.unexpected.length) p.push(`unexpected statuses ${JSON.stringify(r.unexpected)}`);
  if (r.missingRetryAfter) p.push(`${r.missingRetryAfter} 503s without Retry-After`);
  if (r.errors || r.timeouts) p.push(`${r.errors} socket errors, ${r.timeouts} timeouts`);
  if (r.after.inFlightPages !== 0) p.push(`${r.after.inFlightPages} pages still in flight after the load`);
  if (r.dropped.allocatedPages !== 0 || r.dropped.cachePages !== 0) p.push(`pages not back after dropping the cache: ${JSON.stringify(r.dropped)}`);
  if (!(r.heapGrowth < r.heapGrowthLimit)) {
    p.push(
      `live heap grew ${(r.heapGrowth / 2 ** 20).toFixed(2)} MiB over the run (${r.heapWarmMiB.toFixed(1)} -> ${r.heapAfterMiB.toFixed(1)} MiB after GC; ` +
        `limit ${(r.heapGrowthLimit / 2 ** 20).toFixed(2)} MiB for ${(r.bytesAdmitted / 2 ** 20).toFixed(0)} MiB of bodies admitted)`,
    );
  }
  return p;
}

export function formatRun(r) {
  return (
    `${r.policy.padEnd(8)} ${String(Math.round(r.rps)).padStart(7)} req/s  p50 ${String(r.p50).padStart(4)} ms  p99 ${String(r.p99).padStart(5)} ms  ` +
    `503 ${(r.share503 * 100).toFixed(1).padStart(5)} %  peak pool ${r.peakUsedPages}/${r.totalPages} pages  ` +
    `loop delay p99 ${r.loopDelayMs.p99.toFixed(1)} max ${r.loopDelayMs.max.toFixed(1)} ms  RSS ${r.rssStartMiB.toFixed(0)} -> peak ${r.rssPeakMiB.toFixed(0)} MiB  ` +
    `live heap ${r.heapWarmMiB.toFixed(1)} -> ${r.heapAfterMiB.toFixed(1)} MiB (${(r.bytesAdmitted / 2 ** 20).toFixed(0)} MiB admitted)  checked ${r.checked}  corrupt ${r.corrupt.length}  ` +
    `errors ${r.errors} timeouts ${r.timeouts}  statuses ${JSON.stringify(r.statuses)}  shed ${JSON.stringify(r.shed.shed)}`
  );
}

