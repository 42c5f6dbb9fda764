/**
 * net: bursts of GFP_ATOMIC pages (packets) that are processed and freed
 * at once. ATOMIC may dig into the reserves (37.5 % of min) but never
 * sleeps or reclaims: under pressure a burst is dropped.
 */
import { GFP, type Page } from '../../index.js';
import type { LabWorkload } from '../api.js';
import { isEnomem } from '../hooks.js';

export interface NetOp {
  burst: number;
}

export const net: LabWorkload<NetOp> = {
  name: 'net',
  summary: 'bursts of GFP_ATOMIC pages, processed and freed at once; a burst that fails is dropped',
  schedule: (shape) => ({ intervalMs: shape.net.intervalMs }),
  plan: (rng, _i, shape) => ({ burst: rng.int(shape.net.burst[0], shape.net.burst[1]) }),
  start(ctx) {
    const pool = ctx.pool;
    const held: Page[] = [];
    const release = () => {
      for (const p of held) pool.free(p);
      held.length = 0;
    };
    return {
      run({ burst }) {
        try {
          for (let i = 0; i < burst; i++) held.push(ctx.timed(() => pool.alloc(GFP.ATOMIC | GFP.NOWARN)));
        } catch (e) {
          release();
          if (isEnomem(e)) return 'failed';
          throw e;
        }
        ctx.held(held.length);
        // "Process" the packets, then free them.
        for (const p of held) p.bytes[0] = burst;
        release();
        return 'ok';
      },
      close: release,
    };
  },
};
