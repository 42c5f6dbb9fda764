// Worker scaling: N workers each run alloc+free (+ one byte through the
// view) in a loop on one shared pool for a fixed time; the result is the
// aggregate throughput, median over rounds. The main thread only
// coordinates (it sleeps while the workers run).
//   --impl nofail | naive | Buffer.allocUnsafe | compute   --workers N   [--ms T] [--rounds R]
// (compute: no allocation at all, the machine's own scaling ceiling)
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { Pool } from '../../dist/index.js';
import { emit, parseArgs, summarize } from '../lib/measure.mjs';
import { loadNaive, NAIVE_MISSING } from '../lib/naive.mjs';
import { CTL } from '../lib/workers-ctl.mjs';

const opts = parseArgs();
const impl = opts.impl ?? 'nofail';
const workers = Number(opts.workers ?? 1);
const ms = Number(opts.ms ?? (opts.quick ? 250 : 1000));
const rounds = Number(opts.rounds ?? (opts.quick ? 3 : 5));
const warmupMs = opts.quick ? 150 : 500;
const name = `workers/${impl}/${workers}`;

const control = new SharedArrayBuffer(4 * CTL.LENGTH);
const ctl = new Int32Array(control);
const data = { impl, control, handle: null, naiveId: -1 };
let pool;
if (impl === 'nofail') {
  pool = Pool.create({ size: '64MiB' });
  data.handle = pool.handle;
} else if (impl === 'naive') {
  const naive = loadNaive();
  if (naive === null) {
    emit({ case: name, skipped: NAIVE_MISSING });
    process.exit(0);
  }
  data.naiveId = naive.create(16384);
}

const threads = Array.from({ length: workers }, () => new Worker(new URL('../lib/worker-thread.mjs', import.meta.url), { workerData: data }));
const inbox = threads.map(() => []);
const waiters = threads.map(() => null);
threads.forEach((w, i) => {
  w.on('message', (m) => (waiters[i] ? (waiters[i](m), (waiters[i] = null)) : inbox[i].push(m)));
  w.on('error', (e) => {
    console.error(e);
    process.exit(1);
  });
});
const next = (i) => (inbox[i].length ? Promise.resolve(inbox[i].shift()) : new Promise((r) => (waiters[i] = r)));

async function round(r, duration) {
  threads.forEach((w) => w.postMessage({ round: r }));
  await Promise.all(threads.map((_, i) => next(i)));  // all ready
  Atomics.store(ctl, CTL.GO, r);
  Atomics.notify(ctl, CTL.GO);
  await sleep(duration);
  Atomics.store(ctl, CTL.STOP, r);
  const results = await Promise.all(threads.map((_, i) => next(i)));
  // Aggregate: all operations over the span from the first start to the last
  // stop. (Summing per-worker rates would count a worker that ran one chunk
  // just before STOP, as happens when workers outnumber cores, at a huge rate.)
  const start = results.reduce((a, m) => (m.t0 < a ? m.t0 : a), results[0].t0);
  const end = results.reduce((a, m) => (m.t1 > a ? m.t1 : a), results[0].t1);
  const ops = results.reduce((a, m) => a + m.ops, 0);
  return {
    aggregate: (ops / Number(end - start)) * 1e9,
    perWorker: results.map((m) => (m.ops / Number(m.t1 - m.t0)) * 1e9),
  };
}

await round(1, warmupMs);
const aggregate = [];
const perWorker = [];
for (let r = 2; r < rounds + 2; r++) {
  const rates = await round(r, ms);
  aggregate.push(rates.aggregate);
  perWorker.push(...rates.perWorker);
}
threads.forEach((w) => w.postMessage({ round: -1 }));
await Promise.all(threads.map((w) => new Promise((r) => w.once('exit', r))));
pool?.close();
const agg = summarize(aggregate);
emit({
  case: name,
  unit: 'ops/s',
  ...agg,
  workers,
  roundMs: ms,
  // Per worker, over its own running time (informational).
  perWorker: summarize(perWorker).median,
  nsPerOpPerWorker: 1e9 / summarize(perWorker).median,
});
