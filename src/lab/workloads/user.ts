/**
 * user: a service's cache of GFP_KERNEL pages with a shrinker (needs
 * nothing: dropping an entry costs a recomputation, no I/O). It grows by an
 * entry per op and sometimes drops one itself; reclaim takes the oldest.
 * The shrinker may run inside this worker's own allocations (direct
 * reclaim): the entry being built is not in the cache until it is whole.
 */
import { GFP, type Page } from '../../index.js';
import type { Op, UserOp } from '../plan.js';
import { isEnomem, type Outcome, type WorkerContext, type WorkloadRunner } from './context.js';

export function userWorkload(ctx: WorkerContext): WorkloadRunner {
  const pool = ctx.pool;
  const entries: Page[][] = [];
  let pages = 0;
  const publish = () => ctx.board.setHeld(ctx.slot, pages);
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
  return {
    intervalMs: ctx.shape.user.intervalMs,
    run(op: Op): Outcome {
      const { pages: n, evictAt } = op as UserOp;
      if (evictAt >= 0 && entries.length > 0) drop(entries.splice(Math.floor(evictAt * entries.length), 1)[0]!);
      const building: Page[] = [];
      try {
        for (let i = 0; i < n; i++) building.push(ctx.meter.timed(() => pool.alloc(GFP.KERNEL)));
      } catch (e) {
        for (const p of building) pool.free(p);
        publish();
        if (isEnomem(e)) return 'failed';
        throw e;
      }
      entries.push(building);
      pages += building.length;
      publish();
      return 'ok';
    },
    idle: () => 0,
    close() {
      unregister();
      for (const e of entries.splice(0)) drop(e);
      publish();
    },
  };
}
