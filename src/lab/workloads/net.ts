/**
 * net: bursts of GFP_ATOMIC pages (packets) that are processed and freed
 * at once. ATOMIC may dig into the reserves (37.5 % of min) but never
 * sleeps or reclaims: under pressure a burst is dropped.
 */
import { GFP, type Page } from '../../index.js';
import type { NetOp, Op } from '../plan.js';
import { isEnomem, type Outcome, type WorkerContext, type WorkloadRunner } from './context.js';

export function netWorkload(ctx: WorkerContext): WorkloadRunner {
  const pool = ctx.pool;
  const held: Page[] = [];
  const release = () => {
    for (const p of held) pool.free(p);
    held.length = 0;
  };
  return {
    intervalMs: ctx.shape.net.intervalMs,
    run(op: Op): Outcome {
      const { burst } = op as NetOp;
      try {
        for (let i = 0; i < burst; i++) held.push(ctx.meter.timed(() => pool.alloc(GFP.ATOMIC | GFP.NOWARN)));
      } catch (e) {
        release();
        if (isEnomem(e)) return 'failed';
        throw e;
      }
      ctx.board.setHeld(ctx.slot, held.length);
      // "Process" the packets, then free them.
      for (const p of held) p.bytes[0] = burst;
      release();
      return 'ok';
    },
    idle: () => 0,
    close: release,
  };
}
