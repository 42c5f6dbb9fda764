// The allocators a pattern case runs, behind one small interface, so that
// every implementation runs the very same pattern loop (lib/patterns.mjs):
//   alloc(order) -> handle    a block of 4096 << order bytes
//   view(handle) -> Uint8Array  its bytes (the pattern writes or reads one)
//   free(handle)              gives it back (the Buffer baselines: nothing,
//                             the pattern drops its reference and the GC frees)
// Each case process builds exactly one of them, so every call site in the
// pattern loop sees one implementation, which V8 inlines there: every peer
// pays the same for the interface, next to nothing.
//
// The peers are what a user would pick instead of nofail, each used the
// way its documentation shows:
//   - Buffer.allocUnsafe / Buffer.allocUnsafeSlow / new ArrayBuffer: the GC
//     frees. 4096 bytes is not below Buffer.poolSize / 2, so even
//     allocUnsafe makes a fresh ArrayBuffer per call (no pool slicing).
//   - @thi.ng/malloc MemPool over a SharedArrayBuffer: `mallocAs('u8', n)`
//     gives a Uint8Array view (what a caller needs for I/O, as page.bytes
//     is for nofail) and `free(view)` takes it back. Its free walks the list
//     of used blocks and inserts into an address-sorted free list, so its
//     cost grows with the number of live blocks: that is the peer, not a
//     flaw of the benchmark.
//   - the JS free list: pre-made Uint8Array views of one big ArrayBuffer,
//     popped and pushed. Nothing a general allocator can beat: the ceiling.
import { MemPool } from '@thi.ng/malloc';
import { GFP, Pool } from '../../dist/index.js';
import { loadNaive } from './naive.mjs';

export const PAGE = 4096;
/** thi.ng's block header: 8 bytes before each block (SIZEOF_MEM_BLOCK, align 8). */
export const THING_HEADER = 8;

export const PEERS = ['nofail', '@thi.ng/malloc', 'JS free list', 'Buffer.allocUnsafe', 'Buffer.allocUnsafeSlow', 'new ArrayBuffer'];
/** Extra rows of the hot-page pattern: nofail without touching the bytes, and the naive mutex pool (order 0 only). */
export const HOT_ONLY = ['nofail, no bytes', 'naive mutex pool'];

/**
 * One implementation sized for `pages` live pages at once (`perOrder[o]`:
 * the most blocks of order o live at once, for the free list, which cannot
 * split or merge). Null when it is not
 * built (the naive pool: bench/README.md says how to build it).
 * `poolOptions` go to nofail's Pool.create (cases/pool-size.mjs).
 */
export function makePeer(name, { pages, perOrder = [pages] }, poolOptions = {}) {
  switch (name) {
    case 'nofail': {
      const pool = Pool.create({ size: poolSize(pages), ...poolOptions });
      return { name, pool, alloc: (order) => pool.alloc(GFP.KERNEL, order), view: (p) => p.bytes, free: (p) => pool.free(p) };
    }
    case 'nofail, no bytes': {
      // The page's view is never made: what the view costs, by difference.
      const pool = Pool.create({ size: poolSize(pages) });
      const scratch = new Uint8Array(1);
      return { name, pool, alloc: (order) => pool.alloc(GFP.KERNEL, order), view: () => scratch, free: (p) => pool.free(p) };
    }
    case 'naive mutex pool': {
      // bench/naive/naive_pool.cc: a page index from native, the view made
      // here from one external ArrayBuffer over the region.
      const naive = loadNaive();
      if (naive === null) return null;
      const id = naive.create(pages + 1024);
      const region = naive.region(id);
      return {
        name,
        alloc: (order) => {
          if (order !== 0) throw new Error('the naive pool has order 0 only');
          const index = naive.alloc(id);
          return index >= 0 ? index : outOfMemory(name);
        },
        view: (index) => new Uint8Array(region, index * PAGE, PAGE),
        free: (index) => naive.free(id, index),
      };
    }
    case '@thi.ng/malloc': {
      // Room for the live bytes twice over: blocks of mixed sizes fragment.
      const mp = new MemPool({ buf: new SharedArrayBuffer(Math.min(2 ** 32 - PAGE, 2 * pages * (PAGE + THING_HEADER) + (1 << 20))) });
      return {
        name,
        alloc: (order) => mp.mallocAs('u8', PAGE << order) ?? outOfMemory(name),
        view: (v) => v,
        free: (v) => {
          if (!mp.free(v)) throw new Error('@thi.ng/malloc: free of a block it does not know');
        },
      };
    }
    case 'JS free list':
      return freeList(perOrder);
    case 'Buffer.allocUnsafe':
      return { name, alloc: (order) => Buffer.allocUnsafe(PAGE << order), view: (b) => b, free: () => {} };
    case 'Buffer.allocUnsafeSlow':
      return { name, alloc: (order) => Buffer.allocUnsafeSlow(PAGE << order), view: (b) => b, free: () => {} };
    case 'new ArrayBuffer':
      // A view per allocation, as the caller needs one to write.
      return { name, alloc: (order) => new Uint8Array(new ArrayBuffer(PAGE << order)), view: (b) => b, free: () => {} };
    default:
      throw new Error(`unknown implementation ${name}; one of ${PEERS.join(', ')}`);
  }
}

/** A nofail pool for `pages` live pages: four times over, and 64 MiB at least, so the watermarks never enter. */
export function poolSize(pages) {
  let bytes = 64 * 2 ** 20;
  while (bytes < 4 * pages * PAGE) bytes *= 2;
  return bytes;
}

function outOfMemory(name) {
  throw new Error(`${name}: out of memory (the benchmark sized it too small)`);
}

/** Per order, a stack of ready views of one ArrayBuffer; alloc pops, free pushes. */
function freeList(perOrder) {
  const bytes = perOrder.reduce((a, n, o) => a + n * (PAGE << o), 0);
  const buf = new ArrayBuffer(bytes);
  const stacks = [];
  let at = 0;
  for (let o = 0; o < perOrder.length; o++) {
    const s = [];
    for (let i = 0; i < perOrder[o]; i++, at += PAGE << o) s.push(new Uint8Array(buf, at, PAGE << o));
    stacks.push(s);
  }
  return {
    name: 'JS free list',
    alloc: (order) => stacks[order].pop() ?? outOfMemory('JS free list'),
    view: (v) => v,
    free: (v) => {
      stacks[31 - Math.clz32(v.length >>> 12)].push(v);
    },
  };
}
