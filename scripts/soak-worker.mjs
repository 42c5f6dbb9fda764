// A worker of the soak (scripts/soak.mjs), in one of two roles.
//
// 'mixed': random alloc/free at orders 0..3 (mostly GFP_KERNEL, some
//   GFP_NOWAIT that may fail), every block filled with a token derived
//   from (pfn, worker, sequence) and checked word by word when it is
//   freed; freed order-0 pages often go into a small cache instead, which a
//   shrinker gives back under pressure (so direct reclaim, kswapd and
//   cross-thread shrinker requests all run); now and then a watermark
//   reservation (pool.reserve) whose pages are allocated inside
//   reservation.run() with GFP.RESERVE. Runs in slices of a few ms and
//   yields to its event loop between them, where kills are delivered and
//   other threads' shrinker requests are answered. On 'stop' it checks and
//   frees everything, reports and exits 0.
//
// 'hog': oomScoreAdj 500, grows at `hogRate` pages a second until the OOM
//   killer chooses it. A 'cooperative' hog has the default onOomKill (the
//   worker ends itself, exit code 137); a 'stubborn' one ignores the kill,
//   stops touching its pages (the reaper may give them to someone else) and
//   exits 0 once the reaper has had time to take them.
//
// Reports { kind: 'report', ... } with cumulative counters every second
// and once at the end; a mismatch or an unexpected error is reported with
// its details at once.
import v8 from 'node:v8';
import vm from 'node:vm';
import { parentPort, workerData } from 'node:worker_threads';
import { GFP, Pool } from '../dist/index.js';

// Warnings go to the main thread's onWarning (soak.mjs), which counts them.
process.removeAllListeners('warning');

const { handle, role, id, seed, liveCap = 512, cacheCap = 128, hogRate = 2000, stubborn = false, reserveEvery = 200 } = workerData;

let rng = (seed >>> 0) || 1;
function rand() {
  // xorshift32
  rng ^= rng << 13;
  rng ^= rng >>> 17;
  rng ^= rng << 5;
  return (rng >>> 0) / 4294967296;
}

function tokenOf(pfn, seq) {
  let h = Math.imul(pfn + 1, 0x9e3779b1) ^ Math.imul(id + 1, 0x85ebca6b) ^ Math.imul(seq + 1, 0xc2b2ae35);
  h ^= h >>> 15;
  return h >>> 0;
}

function words(page) {
  const b = page.bytes;
  return new Uint32Array(b.buffer, b.byteOffset, b.byteLength >>> 2);
}

const c = {
  ops: 0,
  allocs: 0,
  frees: 0,
  enomem: 0,
  cacheHits: 0,
  cachePuts: 0,
  shrunk: 0,
  reservations: 0,
  reserveTimeouts: 0,
  reserveShort: 0,
  mismatches: 0,
  errors: 0,
  held: 0,
};
let seq = 0;

function stamp(page) {
  const t = tokenOf(page.pfn, ++seq);
  words(page).fill(t);
  return { page, token: t, pages: 1 << page.order };
}

function verify(e, where) {
  const w = words(e.page);
  for (let i = 0; i < w.length; i++) {
    if (w[i] !== e.token) {
      c.mismatches++;
      parentPort.postMessage({
        kind: 'mismatch',
        id,
        where,
        pfn: e.page.pfn,
        order: e.page.order,
        offset: i * 4,
        expected: e.token,
        found: w[i],
      });
      return false;
    }
  }
  return true;
}

function unexpected(err, where) {
  c.errors++;
  parentPort.postMessage({ kind: 'error', id, where, code: err?.code, name: err?.name, message: String(err?.message ?? err) });
}

// The live heap on request: a full GC, then heapUsed. V8 grows and
// shrinks heapTotal lazily (a sawtooth of ~100 MiB over minutes here), so
// only the heap after a GC can show a JavaScript leak. (gc() the way
// --expose-gc would give it, without a flag on the command line.)
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');
parentPort.on('message', (m) => {
  if (m !== 'heap') return;
  gc();
  parentPort.postMessage({ kind: 'heap', id, used: process.memoryUsage().heapUsed });
});

function report(final = false) {
  // heapTotal: this isolate's V8 heap, so the main thread can say how much
  // of the process RSS the live isolates' heaps explain.
  parentPort.postMessage({ kind: 'report', id, role, final, heapTotal: process.memoryUsage().heapTotal, ...c });
}

const tick = () => new Promise((r) => setImmediate(r));

if (role === 'mixed') {
  const pool = Pool.attach(handle, { name: `mixed-${id}` });
  const live = [];
  let livePages = 0;
  // The cache: a FIFO of order-0 pages, stamped, owned by this thread.
  const cache = [];
  let stopping = false;

  pool.registerShrinker({
    name: `soak-cache-${id}`,
    needs: 'none',
    count: () => cache.length,
    scan(n) {
      let freed = 0;
      while (freed < n && cache.length > 0) {
        const e = cache.shift();
        verify(e, 'shrinker');
        pool.free(e.page);
        freed++;
      }
      c.shrunk += freed;
      return freed;
    },
  });

  const pickOrder = () => {
    const r = rand();
    return r < 0.6 ? 0 : r < 0.8 ? 1 : r < 0.92 ? 2 : 3;
  };

  function freeOne() {
    const i = Math.floor(rand() * live.length);
    const e = live[i];
    live[i] = live[live.length - 1];
    live.pop();
    livePages -= e.pages;
    verify(e, 'free');
    if (e.page.order === 0 && cache.length < cacheCap && rand() < 0.5) {
      cache.push(e);
      c.cachePuts++;
    } else {
      pool.free(e.page);
      c.frees++;
    }
  }

  function allocOne() {
    const order = pickOrder();
    if (order === 0 && cache.length > 0 && rand() < 0.3) {
      const e = cache.pop();
      verify(e, 'cache');
      live.push(stamp(e.page));
      livePages += 1;
      c.cacheHits++;
      return;
    }
    const gfp = rand() < 0.85 ? GFP.KERNEL : GFP.NOWAIT | GFP.NOWARN;
    let page;
    try {
      page = pool.alloc(gfp, order);
    } catch (err) {
      if (err?.code === 'ENOMEM') c.enomem++;
      else unexpected(err, 'alloc');
      return;
    }
    live.push(stamp(page));
    livePages += 1 << order;
    c.allocs++;
  }

  function reserveOnce() {
    const n = 8 + Math.floor(rand() * 24);
    let r;
    try {
      r = pool.reserve(n, { timeoutMs: 1000 });
    } catch (err) {
      if (err?.name === 'TimeoutError') c.reserveTimeouts++;
      else unexpected(err, 'reserve');
      return;
    }
    const got = [];
    try {
      r.run(() => {
        for (let i = 0; i < n; i++) got.push(stamp(pool.alloc(GFP.KERNEL | GFP.RESERVE)));
      });
    } catch (err) {
      // A watermark reservation promised these pages.
      c.reserveShort++;
      unexpected(err, `alloc inside a reservation of ${n} (${got.length} taken, ${r.remaining} left)`);
    }
    for (const e of got) {
      verify(e, 'reserve');
      pool.free(e.page);
    }
    r.release();
    c.reservations++;
  }

  parentPort.on('message', (m) => {
    if (m === 'stop') stopping = true;
  });

  let lastReport = performance.now();
  for (;;) {
    const sliceEnd = performance.now() + 5;
    while (!stopping && performance.now() < sliceEnd) {
      c.ops++;
      if (livePages > liveCap) freeOne();
      else if (c.ops % reserveEvery === 0) reserveOnce();
      else if (live.length === 0 || rand() < 0.52) allocOne();
      else freeOne();
    }
    c.held = livePages + cache.length;
    if (stopping) break;
    if (performance.now() - lastReport >= 1000) {
      lastReport = performance.now();
      report();
    }
    await tick();
  }
  for (const e of live) {
    verify(e, 'stop');
    pool.free(e.page);
  }
  for (const e of cache) {
    verify(e, 'stop');
    pool.free(e.page);
  }
  live.length = 0;
  cache.length = 0;
  c.held = 0;
  pool.close();
  report(true);
  // Let the report leave before the thread ends.
  setTimeout(() => process.exit(0), 20);
} else if (role === 'hog') {
  let killed = false;
  const opts = { name: `hog-${id}`, oomScoreAdj: 500 };
  if (stubborn) {
    opts.onOomKill = (info) => {
      killed = true;
      parentPort.postMessage({ kind: 'killed', id, info });
    };
  }
  const pool = Pool.attach(handle, opts);
  const held = [];
  parentPort.postMessage({ kind: 'started', id, task: pool.taskId });
  let last = performance.now();
  let debt = 0;
  while (!killed) {
    const now = performance.now();
    debt += ((now - last) * hogRate) / 1000;
    last = now;
    while (debt >= 1 && !killed) {
      const order = Math.floor(rand() * 3);
      let page;
      try {
        page = pool.alloc(GFP.KERNEL, order);
      } catch (err) {
        if (err?.code !== 'ENOMEM') unexpected(err, 'hog alloc');
        break;
      }
      // A stubborn victim stops touching its pages once told: the reaper
      // may hand them to someone else.
      if (killed) break;
      held.push(stamp(page));
      c.held += 1 << order;
      c.allocs++;
      debt -= 1 << order;
    }
    // Spot checks: the hog's pages must not change under it either.
    if (!killed && held.length > 0) verify(held[Math.floor(rand() * held.length)], 'hog');
    await new Promise((r) => setTimeout(r, 10));
  }
  // Stubborn and killed: the reaper takes the pages after its delay.
  report(true);
  held.length = 0;
  setTimeout(() => process.exit(0), 3000);
}
