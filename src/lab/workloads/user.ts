/**
 * user: a service — a heap it holds for good (shape.user.heapPages, taken
 * when it starts) and a cache of GFP_KERNEL pages with a shrinker (that
 * needs FS, like an inode cache; dropping an entry costs a recomputation,
 * no I/O). The cache grows by an entry per op, sometimes drops an old one
 * once the new one is built, and reclaim takes the oldest. The shrinker may run inside this worker's
 * own allocations (direct reclaim): the entry being built is not in the
 * cache until it is whole.
 *
 * Its GFP_KERNEL allocations are the ones that call the OOM killer when
 * memory runs out (fs allocates NOFS, net ATOMIC, the hog never calls it);
 * and its heap makes it the natural second victim when a first one does
 * not exit — what Weiner's victim timeout kills.
 */
import { GFP, type Page } from '../../index.js';
import type { LabWorkload } from '../api.js';
import { isEnomem } from '../hooks.js';

export interface UserOp {
  /** Pages of the new cache entry. */
  pages: number;
  /** Drop an entry first, at this point of the LRU (0..1); -1: none. */
  evictAt: number;
}

export const user: LabWorkload<UserOp> = {
  name: 'user',
  summary: 'a service: a heap held for good, and a GFP_KERNEL cache with a shrinker (needs FS)',
  schedule: (shape) => ({ intervalMs: shape.user.intervalMs }),
  plan: (rng, _i, shape) => ({
    pages: rng.int(shape.user.pages[0], shape.user.pages[1]),
    evictAt: rng.chance(shape.user.evictChance) ? rng.next() : -1,
  }),
  start(ctx) {
    const pool = ctx.pool;
    // Its heap: a restarted worker (after an OOM kill) may find less memory,
    // and takes what it can without calling the OOM killer.
    const heap: Page[] = [];
    try {
      while (heap.length < ctx.shape.user.heapPages) heap.push(pool.alloc(GFP.KERNEL | GFP.RETRY_MAYFAIL | GFP.NOWARN));
    } catch (e) {
      if (!isEnomem(e)) throw e;
    }
    const entries: Page[][] = [];
    let pages = 0;
    const publish = () => ctx.held(heap.length + pages);
    const drop = (e: Page[]) => {
      for (const p of e) pool.free(p);
      pages -= e.length;
    };
    const unregister = pool.registerShrinker({
      name: 'user-cache',
      needs: 'fs',
      count: () => pages,
      scan(nr) {
        let freed = 0;
        while (freed < nr && entries.length > 0) {
          const e = entries.shift()!;
          drop(e);
          freed += e.length;
        }
        publish();
        return freed;
      },
    });
    publish();
    return {
      run({ pages: n, evictAt }) {
        // The new entry first, then the one it replaces: a worker stuck
        // building an entry (memory gone) holds on to the old one.
        const building: Page[] = [];
        try {
          for (let i = 0; i < n; i++) building.push(ctx.timed(() => pool.alloc(GFP.KERNEL)));
        } catch (e) {
          for (const p of building) pool.free(p);
          publish();
          if (isEnomem(e)) return 'failed';
          throw e;
        }
        if (evictAt >= 0 && entries.length > 0) drop(entries.splice(Math.floor(evictAt * entries.length), 1)[0]!);
        entries.push(building);
        pages += building.length;
        publish();
        return 'ok';
      },
      close() {
        unregister();
        for (const e of entries.splice(0)) drop(e);
        pool.freeBulk(heap.splice(0));
        publish();
      },
    };
  },
};
