#!/usr/bin/env node
// `npm run soak -- --minutes 10`: one pool, a mixed workload on several
// workers for a fixed time, watched from the main thread (DESIGN §5).
//
// Workload (scripts/soak-worker.mjs):
//   - `--workers` (4) mixed workers: random alloc/free at orders 0..3 with
//     a per-block fill word checked at free, a shrinker-backed cache each,
//     watermark reservations used with GFP.RESERVE inside reservation.run();
//   - a hog (oomScoreAdj 500) that grows until the OOM killer chooses it,
//     then is respawned; hogs alternate between exiting when killed and
//     ignoring the kill (so the OOM reaper takes their pages);
//   - the main thread keeps its own shrinker-backed cache of order-0 pages,
//     filled from a timer with GFP_NOWAIT (so it also runs a kswapd).
// The pool is created with { oom: { reaper: true } }.
//
// Every `--interval` seconds, with the workers running, the main thread
// samples the process RSS (/proc/self/status VmRSS) and pool.stats(), runs
// pool.checkInvariants() (the native walk, under the zone lock) and checks
// free + allocated == total on the stats (a lock-free snapshot: a
// mismatch must persist over 5 fresh snapshots to count, as a real leak
// would). It prints one line per sample, then a verdict:
//   - no invariant violation, no pattern mismatch, no unexpected error in
//     any worker, no allocation refused inside a reservation;
//   - at the end, with every worker gone and the main cache freed, nothing
//     lost: every page is free or in the main thread's page cache, and only
//     the main thread's and the transit task are live;
//   - the workload did what it is for: at least one OOM kill, pages
//     reclaimed by shrinkers, reservations taken;
//   - memory flat: the first 20 % of the samples are warm-up (the pool's
//     pages are faulted in, V8 heaps grow to their working size); of the
//     rest, the median of the last third may be at most 10 % above the
//     median of the first third, for two parts of the memory apart:
//       * RSS outside the V8 heaps (RSS minus every live isolate's
//         heapTotal): the pool, the addon, malloc, thread stacks, isolates
//         themselves. A native leak, or a leaked worker, lands here.
//       * the live V8 heap: heapUsed right after a full GC, in the main
//         thread and each mixed worker (hogs, alive a few seconds, count
//         with their heapTotal); allowed 10 % or 8 MiB. A JavaScript leak
//         lands here.
//     Raw RSS is printed but not judged: V8 grows and shrinks heapTotal
//     lazily, in a sawtooth of ~100 MiB over minutes here (two 10-minute
//     runs: raw RSS +42 % and +40 % between the thirds, all of it heap,
//     while RSS outside the heaps stayed at 75-100 MiB). Medians, because
//     the number of live isolates (~10-20 MiB each) changes from sample to
//     sample as hogs come and go; a leak moves the whole band. Runs
//     shorter than 5 minutes are judged at 25 %: the workers' heaps keep
//     growing for the first minute or two. 25 % still catches the leaks a
//     short run can see: one isolate per respawn (~15 respawns a minute)
//     is +45 % over a 1-minute run; pages cannot leak
//     into RSS beyond the mapped pool. Slopes are printed for the record.
//     --rss-limit PERCENT overrides the limit.
// Reported but not judged: OOM kills of mixed workers (each holds at most
// 1/16 of the pool, so one is chosen only when no hog is eligible; the
// output says when that followed a reap by the same OOM call), and
// livelock warnings (printed once with the task table).
// Exit status 0 when every check passes, 1 otherwise.
//
// Options: --minutes M | --seconds S (default: NOFAIL_SOAK_SECONDS, else 10
// minutes), --interval S (default: the run / 40, from 1 to 10 s),
// --workers N (4), --size SIZE ('32MiB'), --hog-rate PAGES_PER_S (2000),
// --rss-limit PERCENT (10, or 25 under 5 minutes).
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Worker } from 'node:worker_threads';
import { GFP, onWarning, Pool } from '../dist/index.js';

// --- options ---------------------------------------------------------------
function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error(`unexpected argument ${a}`);
    o[m[1]] = m[2] ?? argv[++i];
  }
  return o;
}
function num(v, name, min, max) {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number from ${min} to ${max}; received ${v}`);
  return n;
}
const args = parseArgs(process.argv.slice(2));
let seconds = 600;
if (process.env.NOFAIL_SOAK_SECONDS) seconds = num(process.env.NOFAIL_SOAK_SECONDS, 'NOFAIL_SOAK_SECONDS', 1, 86400);
if (args.minutes !== undefined) seconds = num(args.minutes, 'minutes', 1 / 60, 1440) * 60;
if (args.seconds !== undefined) seconds = num(args.seconds, 'seconds', 1, 86400);
const interval = args.interval !== undefined ? num(args.interval, 'interval', 0.1, 600) : Math.min(10, Math.max(1, seconds / 40));
const nWorkers = args.workers !== undefined ? num(args.workers, 'workers', 1, 64) : 4;
const size = args.size ?? '32MiB';
const hogRate = args['hog-rate'] !== undefined ? num(args['hog-rate'], 'hog-rate', 1, 1e7) : 2000;
const rssLimit = args['rss-limit'] !== undefined ? num(args['rss-limit'], 'rss-limit', 0, 1000) : seconds >= 300 ? 10 : 25;
for (const k of Object.keys(args)) {
  if (!['minutes', 'seconds', 'interval', 'workers', 'size', 'hog-rate', 'rss-limit'].includes(k)) throw new Error(`unknown option --${k}`);
}

const t0 = performance.now();

// --- warnings: counted here, not printed by every thread -------------------
// nofail's warnings reach this thread from every worker (onWarning); the
// OOM reports are many lines each, and there are dozens a minute, so the
// soak counts them and prints only what is notable.
process.removeAllListeners('warning');
const warnings = {}; // kind -> count
let lastReap = { t: -Infinity, threadId: -1 };
let bystanderKills = 0;
let killsAfterReap = 0;
const offWarnings = onWarning((w) => {
  warnings[w.kind] = (warnings[w.kind] ?? 0) + 1;
  const t = (performance.now() - t0) / 1000;
  if (w.kind === 'oom-kill') {
    if (w.reaped) {
      lastReap = { t, threadId: w.threadId };
    } else if (/\(mixed-\d+\)/.test(w.message)) {
      // A mixed worker holds at most 1/16 of the pool: it is chosen only
      // when no hog is eligible. Right after a reap by the same thread it
      // means the reaped pages were not tried before choosing again.
      bystanderKills++;
      const afterReap = lastReap.threadId === w.threadId && t - lastReap.t < 0.05;
      if (afterReap) killsAfterReap++;
      console.log(`   .. ${t.toFixed(1)} s: ${w.message}${afterReap ? ' (right after a reap by the same thread)' : ''}`);
    }
  } else if (w.kind === 'use-after-free') {
    problem('use-after-free', w.message);
  } else if (w.kind === 'livelock') {
    // Printed once with its task table, then counted.
    if (warnings.livelock === 1) {
      const rows = (w.tasks ?? []).map((r) => `${r.id}:${r.name}:${r.pages}p${r.victim ? ':victim' : ''}${r.skip ? ':skip' : ''}`);
      console.log(`   .. ${t.toFixed(1)} s: warning ${w.code}: ${w.message.split('\n')[0]}`);
      console.log(`      task table: ${rows.join(' ')}; native live tasks ${pool.stats().tasks}; workers ${live.size}`);
    }
  } else if (w.kind !== 'alloc-failure') {
    console.log(`   .. ${t.toFixed(1)} s: warning ${w.code}: ${w.message.split('\n')[0]}`);
  }
});

// --- the pool and the main thread's cache ----------------------------------
const pool = Pool.create({ size, oom: { reaper: true } });
const total = pool.totalPages;
const workerUrl = new URL('./soak-worker.mjs', import.meta.url);

const problems = []; // { kind, detail }: everything that fails the verdict
function problem(kind, detail) {
  problems.push({ kind, detail });
  if (problems.length <= 20) console.log(`!! ${kind}: ${detail}`);
}

const MAIN_ID = 0;
const mainCacheCap = Math.floor(total / 8);
const mainCache = []; // FIFO of { page, token }
let mainSeq = 0;
let mainShrunk = 0;
function mainToken(pfn) {
  let h = Math.imul(pfn + 1, 0x9e3779b1) ^ Math.imul(MAIN_ID + 1, 0x85ebca6b) ^ Math.imul(++mainSeq, 0xc2b2ae35);
  h ^= h >>> 15;
  return h >>> 0;
}
function mainWords(page) {
  return new Uint32Array(page.bytes.buffer, page.bytes.byteOffset, page.bytes.byteLength >>> 2);
}
function mainVerify(e, where) {
  const w = mainWords(e.page);
  for (let i = 0; i < w.length; i++) {
    if (w[i] !== e.token) {
      problem('pattern mismatch', `main cache (${where}): pfn ${e.page.pfn} offset ${i * 4}: ${w[i]} != ${e.token}`);
      return;
    }
  }
}
const unregister = pool.registerShrinker({
  name: 'soak-main-cache',
  needs: 'none',
  count: () => mainCache.length,
  scan(n) {
    let freed = 0;
    while (freed < n && mainCache.length > 0) {
      const e = mainCache.shift();
      mainVerify(e, 'shrinker');
      pool.free(e.page);
      freed++;
    }
    mainShrunk += freed;
    return freed;
  },
});
const fillTimer = setInterval(() => {
  for (let i = 0; i < 32 && mainCache.length < mainCacheCap; i++) {
    let page;
    try {
      page = pool.alloc(GFP.NOWAIT | GFP.NOWARN);
    } catch (err) {
      if (err?.code !== 'ENOMEM') problem('unexpected error', `main cache fill: ${err?.code} ${err?.message}`);
      return;
    }
    const e = { page, token: mainToken(page.pfn) };
    mainWords(page).fill(e.token);
    mainCache.push(e);
  }
}, 50);

// --- workers -----------------------------------------------------------------
let stopping = false;
let nextId = 1;
const reports = new Map(); // id -> last cumulative report
const live = new Set(); // running Worker objects
const roles = new Map(); // Worker -> 'mixed' | 'hog'
const ids = new Map(); // Worker -> id
const exits = { mixed: { ok: 0, killed: 0, other: 0 }, hog: { killed: 0, stubborn: 0, other: 0 } };
const hogLifetimesMs = [];

function spawn(role, extra = {}) {
  const id = nextId++;
  const workerData = { handle: pool.handle, role, id, seed: (id * 2654435761) >>> 0, ...extra };
  const w = new Worker(workerUrl, { workerData });
  const born = performance.now();
  live.add(w);
  roles.set(w, role);
  ids.set(w, id);
  w.on('message', (m) => {
    if (m.kind === 'report') reports.set(m.id, m);
    else if (m.kind === 'heap') liveHeap.set(m.id, m.used);
    else if (m.kind === 'mismatch') {
      problem('pattern mismatch', `worker ${m.id} (${role}) at ${m.where}: pfn ${m.pfn} order ${m.order} offset ${m.offset}: ${m.found} != ${m.expected}`);
    } else if (m.kind === 'error') {
      problem('unexpected error', `worker ${m.id} (${role}) at ${m.where}: ${m.code ?? m.name}: ${m.message}`);
    }
  });
  w.on('error', (err) => problem('worker crashed', `worker ${id} (${role}): ${err?.stack ?? err}`));
  w.on('exit', (code) => {
    live.delete(w);
    roles.delete(w);
    ids.delete(w);
    if (role === 'hog') {
      hogLifetimesMs.push(performance.now() - born);
      if (code === 137) exits.hog.killed++;
      else if (code === 0 && extra.stubborn) exits.hog.stubborn++;
      else if (!stopping) {
        exits.hog.other++;
        problem('unexpected exit', `hog ${id} exited with code ${code}`);
      }
      if (!stopping) setTimeout(() => !stopping && spawnHog(), 100);
    } else {
      if (code === 0 && stopping) exits.mixed.ok++;
      else if (code === 137) {
        exits.mixed.killed++; // the OOM killer may choose one when no hog is eligible
        console.log(`   .. ${((performance.now() - t0) / 1000).toFixed(1)} s: mixed worker ${id} ended by an OOM kill`);
      }
      else {
        exits.mixed.other++;
        problem('unexpected exit', `mixed worker ${id} exited with code ${code}`);
      }
      if (!stopping) spawnMixed();
    }
  });
  return w;
}
let hogs = 0;
function spawnHog() {
  spawn('hog', { hogRate, stubborn: hogs++ % 2 === 1 });
}
function spawnMixed() {
  spawn('mixed', { liveCap: Math.floor(total / 16), cacheCap: Math.floor(total / 64) });
}
for (let i = 0; i < nWorkers; i++) spawnMixed();
spawnHog();

// --- sampling ----------------------------------------------------------------
function rssKiB() {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : NaN;
}
/** V8 heaps (heapTotal) of the main thread and of every live worker's last report, MiB. */
function heapsMiB() {
  let n = process.memoryUsage().heapTotal;
  for (const w of live) {
    const r = reports.get(ids.get(w));
    if (r?.heapTotal) n += r.heapTotal;
  }
  return n / 1024 / 1024;
}

// The live heap: heapUsed after a full GC, here and in each mixed worker
// (asked at every sample; the answer is used at the next). Hogs live a few
// seconds and answer no messages: their heapTotal stands in.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');
const liveHeap = new Map(); // id -> bytes
function liveHeapMiB() {
  gc();
  let n = process.memoryUsage().heapUsed;
  for (const w of live) {
    const id = ids.get(w);
    if (roles.get(w) === 'mixed') {
      n += liveHeap.get(id) ?? reports.get(id)?.heapTotal ?? 0;
      w.postMessage('heap');
    } else n += reports.get(id)?.heapTotal ?? 0;
  }
  return n / 1024 / 1024;
}
function sum(key) {
  let n = 0;
  for (const r of reports.values()) n += r[key] ?? 0;
  return n;
}

const samples = []; // { t, rssKiB, threads }
let identityMismatches = 0;
let invariantChecks = 0;

function sample() {
  const t = (performance.now() - t0) / 1000;
  const rss = rssKiB();
  // stats() is a snapshot taken under the zone lock: the identity holds in
  // every read, so one mismatch is a bug.
  const s = pool.stats();
  if (s.freePages + s.cachedPages + s.allocatedPages !== s.totalPages) {
    identityMismatches++;
    problem('identity', `free ${s.freePages} + cached ${s.cachedPages} + allocated ${s.allocatedPages} != total ${s.totalPages}`);
  }
  let inv = 'ok';
  try {
    invariantChecks++;
    pool.checkInvariants();
  } catch (err) {
    inv = 'BROKEN';
    problem('invariant', err.message);
  }
  const heaps = heapsMiB();
  const liveMiB = liveHeapMiB();
  samples.push({ t, rssKiB: rss, threads: live.size, heaps, nonHeapKiB: rss - heaps * 1024, liveHeapKiB: liveMiB * 1024 });
  const v = s.vmstat;
  console.log(
    [
      `${t.toFixed(0).padStart(5)}`,
      `${(rss / 1024).toFixed(1).padStart(8)}`,
      `${String(live.size).padStart(3)}`,
      `${heaps.toFixed(1).padStart(6)}`,
      `${liveMiB.toFixed(1).padStart(5)}`,
      `${String(s.freePages).padStart(6)}`,
      `${String(s.allocatedPages).padStart(6)}`,
      `${String(s.reservedPages).padStart(5)}`,
      `${String(mainCache.length).padStart(6)}`,
      `${String(v.oom_kill).padStart(5)}`,
      `${String(v.oom_reaped).padStart(6)}`,
      `${String(v.pgsteal_direct + v.pgsteal_kswapd).padStart(9)}`,
      `${String(sum('reservations')).padStart(7)}`,
      `${(sum('ops') / 1e6).toFixed(2).padStart(8)}`,
      `${String(problems.length).padStart(5)}`,
      inv,
    ].join(' '),
  );
}

console.log(
  `soak: ${seconds} s, pool ${size} (${total} pages), ${nWorkers} mixed workers + 1 hog (${hogRate} pages/s), sample every ${interval} s`,
);
console.log('  t(s) RSS(MiB) thr  heaps  live   free  alloc  resv mainC$ kills reaped reclaimed reserv  ops(M) probs inv');
sample();
const sampler = setInterval(sample, interval * 1000);
await new Promise((r) => setTimeout(r, seconds * 1000));
clearInterval(sampler);
sample();

// --- stop ----------------------------------------------------------------------
stopping = true;
clearInterval(fillTimer);
// Mixed workers check and free everything on 'stop' and exit; hogs are
// terminated: a thread's exit returns its pages (the cleanup hook).
const ending = [];
for (const w of live) {
  if (roles.get(w) === 'hog') {
    ending.push(w.terminate());
  } else {
    ending.push(new Promise((r) => w.once('exit', r)));
    w.postMessage('stop');
  }
}
await Promise.race([Promise.all(ending), new Promise((r) => setTimeout(r, 20_000))]);
// Whatever has not ended by now is stuck: say so, and terminate it.
if (live.size > 0) problem('stuck', `${live.size} workers did not stop within 20 s`);
await Promise.all([...live].map((w) => w.terminate()));
for (const e of mainCache.splice(0)) {
  mainVerify(e, 'stop');
  pool.free(e.page);
}
unregister();

// --- verdict -------------------------------------------------------------------
try {
  pool.checkInvariants();
} catch (err) {
  problem('invariant', `at the end: ${err.message}`);
}
const end = pool.stats();
if (end.allocatedPages !== 0 || end.freePages + end.cachedPages !== end.totalPages) {
  problem('pages lost', `at the end free ${end.freePages} + page caches ${end.cachedPages} != total ${end.totalPages} (allocated ${end.allocatedPages})`);
}
if (end.tasks !== 2) problem('tasks leaked', `at the end ${end.tasks} live tasks; expected 2 (main and transit)`);
const v = end.vmstat;
const reclaimed = v.pgsteal_direct + v.pgsteal_kswapd;
// The hog needs a few seconds to fill the pool: judge coverage from 20 s.
if (seconds >= 20) {
  if (v.oom_kill < 1) problem('coverage', 'no OOM kill happened');
  if (reclaimed < 1) problem('coverage', 'no page was reclaimed by a shrinker');
  if (sum('reservations') < 1) problem('coverage', 'no reservation was taken');
}
if (sum('reserveShort') > 0) problem('reservation', `${sum('reserveShort')} allocations refused inside a reservation`);

// Memory: warm-up, then thirds; each part judged on its medians.
const warm = Math.max(1, Math.ceil(samples.length * 0.2));
const rest = samples.slice(warm);
const third = Math.floor(rest.length / 3);
const rssLines = [];
if (third < 1) {
  problem('rss', `too few samples after warm-up (${rest.length}) to judge RSS; run longer or sample more often`);
  rssLines.push('RSS: not judged');
} else {
  const first = rest.slice(0, third);
  const last = rest.slice(rest.length - third);
  const mib = (k) => (k / 1024).toFixed(1);
  const medianOf = (a, key) => {
    const v = a.map((x) => x[key]).sort((x, y) => x - y);
    return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  };
  // Least-squares slope over the samples after warm-up, MiB/min.
  const slopeOf = (key) => {
    const n = rest.length;
    const mt = rest.reduce((a, x) => a + x.t, 0) / n;
    const mr = rest.reduce((a, x) => a + x[key], 0) / n;
    const b = rest.reduce((a, x) => a + (x.t - mt) * (x[key] - mr), 0) / rest.reduce((a, x) => a + (x.t - mt) ** 2, 0);
    return ((b * 60) / 1024).toFixed(2);
  };
  /** Judges one series: the last third's median at most limit % (or floorMiB) above the first's. */
  const judge = (key, label, floorMiB, judged) => {
    const a = medianOf(first, key);
    const b = medianOf(last, key);
    const growth = (b - a) / a;
    const allowed = Math.max((a * rssLimit) / 100, floorMiB * 1024);
    const verdict = judged ? ` (limit ${rssLimit} %${floorMiB ? ` or ${floorMiB} MiB` : ''})` : ' (not judged)';
    rssLines.push(`${label}: median first third ${mib(a)} MiB, last third ${mib(b)} MiB, growth ${(growth * 100).toFixed(1)} %${verdict}, slope ${slopeOf(key)} MiB/min`);
    if (judged && b - a > allowed) problem('rss', `${label} grew ${(growth * 100).toFixed(1)} % (${mib(b - a)} MiB; limit ${rssLimit} %${floorMiB ? ` or ${floorMiB} MiB` : ''})`);
  };
  rssLines.push(`after warm-up (${warm} samples, ${samples[warm - 1].t.toFixed(0)} s):`);
  judge('nonHeapKiB', '  RSS outside the V8 heaps', 0, true);
  judge('liveHeapKiB', '  live V8 heap (after GC)', 8, true);
  judge('rssKiB', '  RSS in all', 0, false);
}

const lifetimes = hogLifetimesMs.slice().sort((a, b) => a - b);
const median = lifetimes.length ? lifetimes[Math.floor(lifetimes.length / 2)] : 0;
console.log('');
console.log(
  `workload: ${(sum('ops') / 1e6).toFixed(2)} M ops, ${sum('allocs')} allocs, ${sum('enomem')} ENOMEM, ` +
    `${sum('cacheHits')} cache hits, shrinkers freed ${sum('shrunk') + mainShrunk} pages (main ${mainShrunk}), ` +
    `${sum('reservations')} reservations (${sum('reserveTimeouts')} timed out)`,
);
console.log(
  `vmstat: oom_kill ${v.oom_kill}, oom_reaped ${v.oom_reaped}, oom_invoked ${v.oom_invoked}, allocstall ${v.allocstall}, ` +
    `pgsteal direct ${v.pgsteal_direct} kswapd ${v.pgsteal_kswapd}, kswapd_wakeups ${v.kswapd_wakeups}, ` +
    `remote_reclaim_requests ${v.remote_reclaim_requests} (timeouts ${v.remote_reclaim_timeouts}), reserve_waits ${v.reserve_waits}`,
);
console.log(
  `exits: hogs killed ${exits.hog.killed}, stubborn hogs reaped and gone ${exits.hog.stubborn}, ` +
    `mixed workers OOM-killed ${exits.mixed.killed}, other ${exits.hog.other + exits.mixed.other}; median hog lifetime ${(median / 1000).toFixed(1)} s`,
);
console.log(`checks: ${invariantChecks} invariant walks, ${identityMismatches} identity mismatches, end: free ${end.freePages} + cached ${end.cachedPages} of ${end.totalPages}, ${end.tasks} tasks`);
console.log(`warnings: ${Object.entries(warnings).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`);
if (bystanderKills > 0) {
  console.log(
    `note: ${bystanderKills} mixed workers were OOM-killed (${killsAfterReap} right after the same thread's OOM call reaped a hog); ` +
      'not counted against the verdict',
  );
}
for (const l of rssLines) console.log(l);
offWarnings();
pool.close();
if (problems.length === 0) {
  console.log('verdict: PASS');
  process.exit(0);
} else {
  console.log(`verdict: FAIL (${problems.length} problems)`);
  for (const p of problems.slice(0, 50)) console.log(`  ${p.kind}: ${p.detail}`);
  process.exit(1);
}
