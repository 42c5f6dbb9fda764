// pool.allocBulk(64) + a byte written in each page + pool.freeBulk(pages),
// reported per page. allocBulk and freeBulk are also timed apart (one
// performance.now() pair per call, about 1 ns per page of overhead at 64
// pages), so the allocBulk target is judged on allocBulk alone, without the
// bytes: it makes no views (page.bytes makes one when first read).
import { performance } from 'node:perf_hooks';
import { Pool } from '../../dist/index.js';
import { emit, measure, parseArgs, summarize } from '../lib/measure.mjs';

const BATCH = 64;
const opts = parseArgs();
const pool = Pool.create({ size: '64MiB' });
const held = pool.allocBulk(32);  // as the hot pattern: frees do not merge all the way up
let allocMs = 0;
let freeMs = 0;
const run = (n) => {
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const pages = pool.allocBulk(BATCH);
    const t1 = performance.now();
    for (let k = 0; k < BATCH; k++) pages[k].bytes[0] = k;
    const t2 = performance.now();
    pool.freeBulk(pages);
    freeMs += performance.now() - t2;
    allocMs += t1 - t0;
  }
};

// measure() reports the whole; the split comes from the same samples.
const splits = [];
const wrapped = (n) => {
  allocMs = freeMs = 0;
  run(n);
  splits.push({ alloc: (allocMs * 1e6) / (n * BATCH), free: (freeMs * 1e6) / (n * BATCH) });
};
const whole = measure(wrapped, { ...opts, opsPerCall: BATCH });
const sampled = splits.slice(-whole.n);
emit({
  case: 'bulk/allocBulk64',
  ...whole,
  allocBulk: summarize(sampled.map((s) => s.alloc)),
  freeBulk: summarize(sampled.map((s) => s.free)),
  held: held.length,
});
