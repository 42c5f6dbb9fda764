// The operation each case times, one definition per implementation, shared
// by the single-thread cases and the worker-scaling threads so that both
// measure the same thing: take a 4 KiB page, write one byte through a view,
// give it back (or, for the Buffer baselines, let the GC take it back).
//
// Each factory returns run(n), the loop the harness times. Pools keep a
// working set of HOLD pages allocated, as bench/native/core_bench.cc does,
// so that a free does not always coalesce all the way up to maxOrder.
import { loadNaive, NAIVE_MISSING } from './naive.mjs';

const PAGE_SHIFT = 12;

export const HOLD = 32;

/** nofail: pool.alloc() + page.bytes[0] = x + pool.free(page). */
export function nofailLoop(pool, { bytes = true } = {}) {
  const held = [];
  for (let i = 0; i < HOLD; i++) held.push(pool.alloc());
  if (bytes) {
    return (n) => {
      for (let i = 0; i < n; i++) {
        const p = pool.alloc();
        p.bytes[0] = i;
        pool.free(p);
      }
    };
  }
  return (n) => {
    for (let i = 0; i < n; i++) pool.free(pool.alloc());
  };
}

/** The naive mutex pool: index from native, view made in JS from one external ArrayBuffer. */
export function naiveLoop(id) {
  const naive = loadNaive();
  if (naive === null) throw new Error(NAIVE_MISSING);
  const region = naive.region(id);
  for (let i = 0; i < HOLD; i++) naive.alloc(id);
  return (n) => {
    for (let i = 0; i < n; i++) {
      const index = naive.alloc(id);
      const view = new Uint8Array(region, index << PAGE_SHIFT, 4096);
      view[0] = i;
      naive.free(id, index);
    }
  };
}

// Baselines keep the last few buffers reachable, as a program would, so the
// allocation cannot be optimized away; the GC frees the rest.
const sink = new Array(16).fill(null);

export const baselines = {
  'Buffer.allocUnsafe': (n) => {
    for (let i = 0; i < n; i++) {
      const b = Buffer.allocUnsafe(4096);
      b[0] = i;
      sink[i & 15] = b;
    }
  },
  'Buffer.allocUnsafeSlow': (n) => {
    for (let i = 0; i < n; i++) {
      const b = Buffer.allocUnsafeSlow(4096);
      b[0] = i;
      sink[i & 15] = b;
    }
  },
  'new ArrayBuffer': (n) => {
    for (let i = 0; i < n; i++) {
      const ab = new ArrayBuffer(4096);
      new Uint8Array(ab)[0] = i;
      sink[i & 15] = ab;
    }
  },
};

// The scaling ceiling: pure computation, no allocation, nothing shared. Its
// 2-worker/1-worker ratio is what the machine gives two threads at all (on
// a VM whose two vCPUs share a core it is well under 2), measured in the
// same run as the allocators' ratios.
let state = 0x2545f491;
export function computeLoop(n) {
  let x = state;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < 32; k++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
    }
  }
  state = x;
}
