/**
 * hog: from the end of the plentiful phase it grows and never frees, and
 * each step appends a block to the filesystem (a small transaction under
 * the fs lock, like a write() to its log). A positive oomScoreAdj makes it
 * the natural OOM victim; it never calls the OOM killer itself (its
 * allocations are RETRY_MAYFAIL), so its fate is decided by someone
 * else's allocation.
 *
 * Its growth is paced up to its share of the pool (shape.hog.targetPages)
 * — pressure the caches absorb. Then, once per run, it plays the 2015
 * scene (scene.ts): it cues it, and when an fs transaction holds the fs
 * lock for it, it takes the rest of memory and appends — so it blocks on
 * the lock held by a transaction whose allocations now find nothing. Like
 * a process that takes a fatal signal during a system call, it finishes
 * the step (growth, then append) before it acts on a kill. A hog restarted
 * after a kill grows back to its share and only appends.
 */
import { GFP, type Page } from '../../index.js';
import type { LabWorkload, TxAlloc } from '../api.js';
import { isEnomem } from '../hooks.js';

export interface HogOp {
  /** Pages to grow by (while below its share). */
  pages: number;
}

export const hog: LabWorkload<HogOp> = {
  name: 'hog',
  summary: 'grows to 3/4 of the pool, paced, appending to the filesystem at each step; then takes the rest while an fs transaction holds the lock (the 2015 scene)',
  oomScoreAdj: 500,
  schedule: (shape) => ({ intervalMs: shape.hog.intervalMs, startMs: shape.hog.startMs }),
  plan: (_rng, _i, shape) => ({ pages: shape.hog.chunk }),
  start(ctx) {
    const pool = ctx.pool;
    const target = ctx.shape.hog.targetPages;
    const held: Page[] = [];
    let cued = false;
    const append = (tx: TxAlloc) => {
      const log = ctx.timed(() => tx.logPage());
      try {
        log.bytes[0] = held.length & 0xff;
      } finally {
        tx.freeLog(log);
      }
    };
    /** Allocates until `limit` pages are held or an allocation fails; false if one failed. */
    const grow = (limit: number, gfp: number): boolean => {
      try {
        while (held.length < limit) held.push(ctx.timed(() => pool.alloc(gfp)));
        return true;
      } catch (e) {
        if (!isEnomem(e)) throw e;
        return false;
      } finally {
        ctx.held(held.length);
      }
    };
    return {
      async run({ pages }) {
        if (held.length < target) {
          // Paced: it reclaims as hard as it must, but never calls the OOM killer.
          if (!grow(Math.min(target, held.length + pages), GFP.KERNEL | GFP.RETRY_MAYFAIL | GFP.NOWARN)) return 'failed';
        } else if (!cued) {
          cued = true;
          // The scene: everything else while a transaction holds the fs lock for us.
          if (await ctx.fs.scene.cue()) grow(Infinity, GFP.KERNEL | GFP.RETRY_MAYFAIL | GFP.NOWARN);
        }
        return ctx.fs.transaction(2, append);
      },
      close() {
        // The pages go back with the thread's detach (pool.close()).
        held.length = 0;
      },
    };
  },
};
