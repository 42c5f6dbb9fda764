// The allocation patterns of a service (issue 13, STYLE habit 12), written
// once over the peer interface of lib/peers.mjs so that every allocator runs
// the same loop. Each returns { run(n), opsPerCall, pages, perOrder }: run(n)
// is what lib/measure.mjs times, and one op is one allocation with its free
// and one byte written through the block's view.
//
//   hot          one page recycled: alloc, write, free (32 more held, so a
//                free does not merge all the way up). No service allocates
//                like this; it stays as the floor, not the headline.
//   burst N      N pages held, then freed (a request body), newest first
//                (lifo) or oldest first (fifo).
//   random L     a cache: about L pages live in slots; each op frees a
//                random slot's block and allocates a new one into it, of
//                order 0..3 (P = 1/2, 1/4, 1/8, 1/8: 2.5 pages on average).
//                The slots and orders come from a fixed pseudo-random
//                sequence, the same for every allocator.

export const HOT_HOLD = 32;
export const ORDER_WEIGHTS = [0.5, 0.25, 0.125, 0.125];
const MEAN_PAGES = ORDER_WEIGHTS.reduce((a, w, o) => a + w * 2 ** o, 0);
const SEQ = 1 << 16;

/** What a pattern needs of the allocator before it is made: live pages and blocks per order. */
export function patternNeeds(spec) {
  if (spec.pattern === 'hot') return { pages: HOT_HOLD + 1 };
  if (spec.pattern === 'burst') return { pages: spec.n };
  if (spec.pattern === 'random') {
    const slots = Math.round(spec.live / MEAN_PAGES);
    // The free list cannot split or merge: room for each order's share of
    // the slots with a margin far beyond its binomial spread.
    return { pages: spec.live, slots, perOrder: ORDER_WEIGHTS.map((w) => Math.ceil(slots * w * 1.25) + 64) };
  }
  throw new Error(`unknown pattern ${spec.pattern}`);
}

export function makePattern(spec, impl) {
  const { alloc, view, free } = impl;
  if (spec.pattern === 'hot') {
    const held = [];
    for (let i = 0; i < HOT_HOLD; i++) held.push(alloc(0));
    const sink = new Array(16).fill(null);
    return {
      opsPerCall: 1,
      held,
      run(n) {
        for (let i = 0; i < n; i++) {
          const h = alloc(0);
          view(h)[0] = i;
          free(h);
          sink[i & 15] = h;  // a Buffer stays reachable until overwritten: no allocation is optimized away
        }
      },
    };
  }
  if (spec.pattern === 'burst') {
    const N = spec.n;
    const held = new Array(N).fill(null);
    const lifo = spec.free === 'lifo';
    if (!lifo && spec.free !== 'fifo') throw new Error(`--free must be lifo or fifo; received ${spec.free}`);
    return {
      opsPerCall: N,
      run(n) {
        for (let r = 0; r < n; r++) {
          for (let i = 0; i < N; i++) {
            const h = alloc(0);
            view(h)[0] = i;
            held[i] = h;
          }
          if (lifo) {
            for (let i = N - 1; i >= 0; i--) {
              free(held[i]);
              held[i] = null;
            }
          } else {
            for (let i = 0; i < N; i++) {
              free(held[i]);
              held[i] = null;
            }
          }
        }
      },
    };
  }
  if (spec.pattern === 'random') {
    const { slots } = patternNeeds(spec);
    const { slot, order } = randomSequence(slots);
    const held = new Array(slots);
    for (let s = 0; s < slots; s++) {
      held[s] = alloc(order[s % SEQ]);
      view(held[s])[0] = s;
    }
    let k = 0;
    return {
      opsPerCall: 1,
      slots,
      run(n) {
        for (let i = 0; i < n; i++) {
          const s = slot[k];
          free(held[s]);
          const h = alloc(order[k]);
          view(h)[0] = i;
          held[s] = h;
          k = (k + 1) & (SEQ - 1);
        }
      },
    };
  }
  throw new Error(`unknown pattern ${spec.pattern}`);
}

/** xorshift32 from a fixed seed: the same slots and orders in every process. */
export function randomSequence(slots, length = SEQ, seed = 0x2545f491) {
  let x = seed | 0;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const slot = new Uint32Array(length);
  const order = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    slot[i] = next() % slots;
    const u = next() / 2 ** 32;
    let o = 0;
    for (let acc = ORDER_WEIGHTS[0]; u >= acc && o < ORDER_WEIGHTS.length - 1; acc += ORDER_WEIGHTS[++o]);
    order[i] = o;
  }
  return { slot, order };
}
