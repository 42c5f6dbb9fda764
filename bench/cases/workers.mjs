// The shared-state patterns on N workers (lib/worker-loops.mjs says what
// each does): every worker runs its loop on one shared allocator for a fixed
// time; the result is the aggregate throughput in pages per second, the
// median over rounds, and its inverse, ns per page. The main thread only
// coordinates (it sleeps while the workers run).
//   --pattern working-set | handoff   --impl nofail | naive mutex pool |
//   @thi.ng/malloc | Buffer.allocUnsafe | compute   --workers N
//   [--role ring | split] (handoff; split needs an even N)   [--ms T] [--rounds R]
import { setTimeout as sleep } from 'node:timers/promises';
import { MessageChannel, Worker } from 'node:worker_threads';
import { MemPool } from '@thi.ng/malloc';
import { Pool } from '../../dist/index.js';
import { emit, parseArgs, summarize } from '../lib/measure.mjs';
import { loadNaive, NAIVE_MISSING } from '../lib/naive.mjs';
import { PAGE, THING_HEADER } from '../lib/peers.mjs';
import { ringBuffer, RING_CAPACITY } from '../lib/ring.mjs';
import { BATCH, WORKING_SET } from '../lib/worker-loops.mjs';
import { CTL } from '../lib/workers-ctl.mjs';

const opts = parseArgs();
const impl = opts.impl ?? 'nofail';
const pattern = opts.pattern ?? 'working-set';
const role = opts.role ?? 'ring';
const workers = Number(opts.workers ?? 1);
const ms = Number(opts.ms ?? (opts.quick ? 200 : 500));
const rounds = Number(opts.rounds ?? (opts.quick ? 3 : 5));
const warmupMs = opts.quick ? 200 : 400;
const name = impl === 'compute' ? `workers/compute/${workers}` : `workers/${pattern}${pattern === 'handoff' ? `-${role}` : ''}/${impl}/${workers}`;
if (pattern === 'handoff' && role === 'split' && workers % 2 !== 0) throw new Error('--role split needs an even number of workers');

// The most pages live at once, over all workers: what each allocator is sized for.
const livePages = pattern === 'working-set' ? workers * (WORKING_SET.BASE + WORKING_SET.SWING) : workers * (RING_CAPACITY + 2 * BATCH);
const control = new SharedArrayBuffer(4 * CTL.LENGTH);
const ctl = new Int32Array(control);
const shared = { impl, pattern, control, workers, handle: null, naiveId: -1, thingBuf: null, thingLock: null, rings: [] };
let pool;
if (impl === 'nofail') {
  // 1 GiB at least: its page caches then cap at PCP_HIGH_MAX (8192 pages),
  // whatever the worker count, and free memory stays far above the
  // watermarks. MAP_NORESERVE: only the pages used become resident.
  let bytes = 2 ** 30;
  while (bytes < 1.5 * livePages * PAGE) bytes *= 2;
  pool = Pool.create({ size: bytes });
  shared.handle = pool.handle;
} else if (impl === 'naive mutex pool') {
  const naive = loadNaive();
  if (naive === null) {
    emit({ case: name, skipped: NAIVE_MISSING });
    process.exit(0);
  }
  shared.naiveId = naive.create(livePages + 4096);
} else if (impl === '@thi.ng/malloc') {
  shared.thingBuf = new SharedArrayBuffer(PAGE * Math.ceil((1.1 * livePages * (PAGE + THING_HEADER)) / PAGE) + (1 << 20));
  shared.thingLock = new SharedArrayBuffer(4);
  new MemPool({ buf: shared.thingBuf });  // initializes the pool's state in the buffer; workers wrap it
}
if (pattern === 'handoff') shared.rings = Array.from({ length: workers }, () => ringBuffer());

// Buffer.allocUnsafe hands its buffers over by postMessage: one channel per ring.
const channels = pattern === 'handoff' && impl === 'Buffer.allocUnsafe' ? shared.rings.map(() => new MessageChannel()) : [];
const threads = Array.from({ length: workers }, (_, i) => {
  const half = workers / 2;
  const myRole = role === 'split' ? (i < half ? 'producer' : 'consumer') : 'ring';
  let ports;
  const transferList = [];
  if (channels.length) {
    ports = {};
    if (myRole !== 'consumer') ports.out = channels[i].port1;
    if (myRole === 'ring') ports.in = channels[(i + workers - 1) % workers].port2;
    if (myRole === 'consumer') ports.in = channels[i - half].port2;
    transferList.push(...Object.values(ports));
  }
  return new Worker(new URL('../lib/worker-thread.mjs', import.meta.url), { workerData: { ...shared, index: i, role: myRole, ports }, transferList });
});
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
  // Aggregate: all pages over the span from the first start to the last
  // stop. (Summing per-worker rates would count a worker that ran one chunk
  // just before STOP, as happens when workers outnumber cores, at a huge rate.)
  const start = results.reduce((a, m) => (m.t0 < a ? m.t0 : a), results[0].t0);
  const end = results.reduce((a, m) => (m.t1 > a ? m.t1 : a), results[0].t1);
  const pages = results.reduce((a, m) => a + m.pages, 0);
  totalPages += pages;
  return { aggregate: (pages / Number(end - start)) * 1e9, perWorker: results.filter((m) => m.pages > 0).map((m) => (m.pages / Number(m.t1 - m.t0)) * 1e9) };
}

let totalPages = 0;
const zoneBefore = pool?.stats().counters;
await round(1, warmupMs);
const aggregate = [];
const perWorker = [];
for (let r = 2; r < rounds + 2; r++) {
  const rates = await round(r, ms);
  aggregate.push(rates.aggregate);
  perWorker.push(...rates.perWorker);
}
const zone = pool?.stats().counters;
threads.forEach((w) => w.postMessage({ round: -1 }));
await Promise.all(threads.map((w) => new Promise((r) => w.once('exit', r))));
pool?.close();
const agg = summarize(aggregate);
const each = summarize(perWorker).median;
emit({
  case: name,
  unit: 'pages/s',
  ...agg,
  workers,
  roundMs: ms,
  nsPerPage: 1e9 / agg.median,
  // Per worker that completes pages, over its own running time: the cost of
  // a page in one thread (informational).
  nsPerPageInWorker: 1e9 / each,
  // Pages that went through the shared zone (native pgalloc + pgfree) per
  // page completed, over the whole run: how much of the traffic was shared
  // state rather than the threads' own page caches.
  zonePagesPerPage: zone && totalPages ? (zone.pgalloc - zoneBefore.pgalloc + zone.pgfree - zoneBefore.pgfree) / totalPages : undefined,
});
