// Where a working set's time goes, on one thread: the working-set pattern
// of lib/worker-loops.mjs (hold 4096 pages, allocate 16384 more, free 16384
// picked at random) in variants that each take one thing away, measured in
// turns in one process so that the machine's drift hits them alike:
//   bytes        nofail, one byte written through page.bytes (the pattern)
//   no bytes     nofail, the bytes never touched: the allocator alone
//   region view  nofail, the byte written through one view of the whole
//                region at pfn * 4096: no per-page view, the same memory
//   hugepages    bytes, on a pool made with hugepages: true (fewer TLB misses)
//   free list    the same pages of the same nofail region, taken once and
//                recycled through a JS free list (LIFO): the memory type
//                without the allocator
// ns per page allocated (its free included).
import { Pool } from '../../dist/index.js';
import { emit, parseArgs, summarize } from '../lib/measure.mjs';

const opts = parseArgs();
const turns = opts.quick ? 2 : 4;
const turnMs = opts.quick ? 300 : 1000;
const BASE = 4096;
const SWING = 16384;
const PAGE = 4096;

/** The working-set loop over alloc(i) -> handle and free(handle), for `ms`: ns per page. */
function workingSet(alloc, free, ms) {
  const live = new Array(BASE + SWING).fill(null);
  let count = 0;
  for (; count < BASE; count++) live[count] = alloc(count);
  let x = 0x2545f491;
  let pages = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    while (count < BASE + SWING) live[count] = alloc(count++);
    while (count > BASE) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      const r = (x >>> 0) % count;
      free(live[r]);
      live[r] = live[--count];
      live[count] = null;
    }
    pages += SWING;
  }
  const ns = ((performance.now() - t0) * 1e6) / pages;
  while (count > 0) free(live[--count]);
  return ns;
}

const pool = Pool.create({ size: '256MiB' });
const huge = Pool.create({ size: '256MiB', hugepages: true });
const first = pool.alloc();
const region = new Uint8Array(first.bytes.buffer); // the pool is one chunk: pfn * 4096 indexes it
pool.free(first);

const VARIANTS = {
  bytes: () =>
    workingSet(
      (i) => {
        const p = pool.alloc();
        p.bytes[0] = i;
        return p;
      },
      (p) => pool.free(p),
      turnMs,
    ),
  'no bytes': () => workingSet(() => pool.alloc(), (p) => pool.free(p), turnMs),
  'region view': () =>
    workingSet(
      (i) => {
        const p = pool.alloc();
        region[p.pfn * PAGE] = i;
        return p;
      },
      (p) => pool.free(p),
      turnMs,
    ),
  hugepages: () =>
    workingSet(
      (i) => {
        const p = huge.alloc();
        p.bytes[0] = i;
        return p;
      },
      (p) => huge.free(p),
      turnMs,
    ),
  'free list': () => {
    const pages = pool.allocBulk(BASE + SWING);
    const stack = pages.map((p) => p.bytes);
    const run = workingSet(
      (i) => {
        const v = stack.pop();
        v[0] = i;
        return v;
      },
      (v) => stack.push(v),
      turnMs,
    );
    pool.freeBulk(pages);
    return run;
  },
};

// A first turn of each, not counted: it faults the pools' pages in (the
// first write to a page of a MAP_NORESERVE mapping) and warms the JIT up.
for (const fn of Object.values(VARIANTS)) fn();
const got = Object.fromEntries(Object.keys(VARIANTS).map((k) => [k, []]));
for (let t = 0; t < turns; t++) for (const [k, fn] of Object.entries(VARIANTS)) got[k].push(fn());
const variants = Object.fromEntries(Object.entries(got).map(([k, v]) => [k, summarize(v)]));
pool.close();
huge.close();
emit({ case: 'working-set-cost', unit: 'ns/op', median: variants.bytes.median, variants });
