// Does a pool's size change what a page costs? A small and a large pool
// (default 64 MiB and 64 GiB) in one process, measured in turns (small,
// large, large, small, ...) so that the machine's drift and this process's
// JIT state hit both alike: the ratio is the result. The pool is one
// MAP_NORESERVE mapping, so only the pages used become resident. Measured:
//   - the metadata: VmRSS after Pool.create minus before, per GiB of pool;
//   - hot: one page recycled through the page cache (lib/patterns.mjs);
//   - zone: the random pattern with 1k live pages, orders 0..3, with the
//     page cache off (pcp: false), so every alloc and free is the buddy's;
//   each with one byte written through page.bytes and without the bytes.
// A size the allocator cannot make, or makes but cannot use, is reported
// with its error (`failed`), beside what could be measured, so the suite
// goes on either way.
//   --sizes <small>,<large>   (bytes or size strings)
import { readFileSync } from 'node:fs';
import { Pool } from '../../dist/index.js';
import { emit, measure, parseArgs } from '../lib/measure.mjs';
import { makePattern } from '../lib/patterns.mjs';

const opts = parseArgs();
const sizes = (opts.sizes ?? '64MiB,64GiB').split(',');
const turns = opts.quick ? 2 : 3;

function rssKiB() {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  if (!m) throw new Error('no VmRSS in /proc/self/status');
  return Number(m[1]);
}

const failures = [];
function attempt(what, fn) {
  try {
    return fn();
  } catch (e) {
    failures.push(`${what}: ${e.code ?? e.name}: ${e.message}`);
    return undefined;
  }
}

// Warm the code paths up with a small pool, so the RSS difference is the pool's.
Pool.create({ size: '1MiB' }).close();
globalThis.gc?.();
const per = {};
for (const size of sizes) {
  const before = rssKiB();
  const t0 = performance.now();
  const pool = attempt(`Pool.create({ size: '${size}' })`, () => Pool.create({ size }));
  if (!pool) continue;
  const createMs = performance.now() - t0;
  const metaBytes = (rssKiB() - before) * 1024;
  const poolBytes = pool.totalPages * 4096;
  const zonePool = attempt(`Pool.create({ size: '${size}', pcp: false })`, () => Pool.create({ size, pcp: false }));
  per[size] = { pool, zonePool, poolBytes, createMs, metaBytes, metaBytesPerGiB: metaBytes / (poolBytes / 2 ** 30), samples: {} };
}

const scratch = new Uint8Array(1);
const peer = (pool, bytes) => ({ pool, alloc: (order) => pool.alloc(undefined, order), view: bytes ? (p) => p.bytes : () => scratch, free: (p) => pool.free(p) });
const KINDS = {
  hot: (s) => [s.pool, { pattern: 'hot' }, true],
  hotNoBytes: (s) => [s.pool, { pattern: 'hot' }, false],
  zone: (s) => [s.zonePool, { pattern: 'random', live: 1000 }, true],
  zoneNoBytes: (s) => [s.zonePool, { pattern: 'random', live: 1000 }, false],
};
const live = Object.keys(per);
for (const [kind, setup] of Object.entries(KINDS)) {
  const broken = new Set();
  for (let turn = 0; turn < turns; turn++) {
    for (const size of turn % 2 === 0 ? live : [...live].reverse()) {
      const [pool, spec, bytes] = setup(per[size]);
      if (!pool || broken.has(size)) continue;
      const r = attempt(`${size} ${kind}`, () => measure(makePattern(spec, peer(pool, bytes)).run, opts));
      if (r) (per[size].samples[kind] ??= []).push(r.median);
      else broken.add(size);
    }
  }
}

const median = (v) => [...v].sort((a, b) => a - b)[(v.length - 1) >> 1];
const result = { case: 'pool-size', unit: 'x', sizes: {} };
for (const [size, s] of Object.entries(per)) {
  s.pool.close();
  s.zonePool?.close();
  const out = { poolBytes: s.poolBytes, createMs: s.createMs, metaBytes: s.metaBytes, metaBytesPerGiB: s.metaBytesPerGiB };
  for (const [kind, v] of Object.entries(s.samples)) out[kind] = { median: median(v), turns: v };
  result.sizes[size] = out;
}
// The result's median: the large pool's cost over the small one's, the worse
// of the hot page and the zone path, each with the bytes where the large
// pool could make its views, else without. (The other pair is shown, not
// judged: with four noisy ratios the worst would be a coin toss.)
const [small, large] = sizes.map((s) => result.sizes[s]);
if (small && large) {
  const ratios = {};
  for (const [k, fallback] of [['hot', 'hotNoBytes'], ['zone', 'zoneNoBytes']]) {
    const key = small[k] && large[k] ? k : fallback;
    if (small[key] && large[key]) ratios[key] = large[key].median / small[key].median;
  }
  for (const k of Object.keys(KINDS)) if (small[k] && large[k]) result[`ratio_${k}`] = large[k].median / small[k].median;
  if (Object.keys(ratios).length) {
    result.judged = ratios;
    result.median = Math.max(...Object.values(ratios));
  }
}
if (failures.length) result.failed = failures.join('; ');
emit(result);
