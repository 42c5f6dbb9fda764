/**
 * hog: grows by `chunk` pages per op and never frees, until it is
 * OOM-killed or the run ends; a positive oomScoreAdj makes it the natural
 * victim. It allocates with GFP_KERNEL | __GFP_RETRY_MAYFAIL: it reclaims
 * and retries as hard as anyone, but never calls the OOM killer itself (it
 * tries again at its next op), so its victim's fate is decided by someone
 * else's allocation, wherever the hog happens to be at that moment. Each op first appends one block to the filesystem (a tiny
 * transaction under the fs lock, like a write() to its log), then grows —
 * so when a transaction holds the lock while its allocation loops, the hog
 * waits for the lock, not in the allocator, and can be chosen as a victim
 * there: the 2015 TIF_MEMDIE stall. Like a process that takes a fatal
 * signal on its way back from a system call, it does not grow after the
 * append once it knows it was killed.
 */
import { GFP, type Page } from '../../index.js';
import type { HogOp, Op } from '../plan.js';
import { isEnomem, type Outcome, type WorkerContext, type WorkloadRunner } from './context.js';
import type { Filesystem } from './fs.js';

export function hogWorkload(ctx: WorkerContext, fs: Filesystem): WorkloadRunner {
  const pool = ctx.pool;
  const held: Page[] = [];
  const append = (tx: Parameters<Parameters<Filesystem['transaction']>[1]>[0]) => {
    const log = ctx.meter.timed(() => tx.logPage());
    try {
      log.bytes[0] = held.length & 0xff;
    } finally {
      tx.freeLog(log);
    }
  };
  return {
    intervalMs: ctx.shape.hog.intervalMs,
    run(op: Op): Outcome {
      const { pages, append: appends } = op as HogOp;
      if (appends) {
        const outcome = fs.transaction(2, append);
        if (outcome !== 'ok') return outcome;
        if (ctx.killed()) return 'ok';
      }
      const before = held.length;
      try {
        for (let i = 0; i < pages; i++) held.push(ctx.meter.timed(() => pool.alloc(GFP.KERNEL | GFP.NORETRY | GFP.NOWARN)));
      } catch (e) {
        if (!isEnomem(e)) throw e;
        ctx.board.hold(ctx.slot, held.length - before);
        return 'failed';
      }
      ctx.board.hold(ctx.slot, held.length - before);
      return 'ok';
    },
    idle: () => fs.policy.idle(),
    close() {
      // The pages go back with the thread's detach (pool.close()).
      held.length = 0;
    },
  };
}
