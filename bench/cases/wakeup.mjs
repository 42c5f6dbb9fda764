// A worker blocked in alloc() on a full pool (Atomics.wait in the slow
// path) and another thread's free: how long from the free until the
// worker has its page. Reports p50/p99/max over many rounds, in µs.
import { Worker } from 'node:worker_threads';
import { GFP, Pool } from '../../dist/index.js';
import { emit, parseArgs } from '../lib/measure.mjs';

const opts = parseArgs();
const rounds = opts.quick ? 150 : 1000;
const pool = Pool.create({ size: `${(rounds + 16) * 4}KiB`, watermarks: { min: 0, low: 0, high: 0 }, pcp: false });
const held = [];
for (;;) {
  try {
    held.push(pool.alloc(GFP.NOWAIT));
  } catch {
    break;
  }
}
const src = `
  import { workerData, parentPort } from 'node:worker_threads';
  import { GFP, Pool } from ${JSON.stringify(new URL('../../dist/index.js', import.meta.url).href)};
  const pool = Pool.attach(workerData.handle, { pcp: false });
  const times = new Float64Array(workerData.rounds);
  for (let i = 0; i < workerData.rounds; i++) {
    pool.alloc(GFP.NOFS);
    times[i] = performance.timeOrigin + performance.now();
  }
  parentPort.postMessage(times);
`;
const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(src)}`), { workerData: { handle: pool.handle, rounds } });
const ctl = new Int32Array(pool.handle.control);
const WAITERS = 2;
const freedAt = new Float64Array(rounds);
const done = new Promise((resolve) => w.once('message', resolve));
for (let i = 0; i < rounds; i++) {
  // Wait (without blocking our event loop for long) until the worker is asleep.
  while (Atomics.load(ctl, WAITERS) === 0) await new Promise((r) => setImmediate(r));
  await new Promise((r) => setTimeout(r, 1));
  freedAt[i] = performance.timeOrigin + performance.now();
  pool.free(held.pop());
}
const got = await done;
await w.terminate();
const lat = Array.from(got, (t, i) => (t - freedAt[i]) * 1000).sort((a, b) => a - b);
const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
const r1 = (x) => Math.round(x * 10) / 10;
emit({ case: 'wakeup/free-to-waiter', unit: 'µs', median: r1(q(0.5)), p99: r1(q(0.99)), max: r1(lat.at(-1)), samples: lat.length });
