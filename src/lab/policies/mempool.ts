/**
 * mempool: the transaction's pinned log items come from a mempool (created
 * on the main thread, shared by every worker), which never fails a sleeping
 * caller: it waits for an element to come back. The demand-paged metadata
 * reads cannot come from it — Dave Chinner's objection: they are unbounded
 * and reclaimable, and still plain GFP_NOFS allocations that may fail.
 */
import { GFP, Mempool, type MempoolHandle } from '../../index.js';
import { SYSTEM_3_19, SYSTEM_3_19_TEXT } from './common.js';
import type { FsContext, FsPolicy, LabPolicy, TxAlloc } from '../api.js';

function mempoolFs(ctx: FsContext): FsPolicy {
  const pool = ctx.pool;
  const mp = Mempool.attach(pool, ctx.shared as MempoolHandle);
  const tx: TxAlloc = {
    cache: (_willAllocate, fn) => fn(GFP.NOFS),
    logPage: () => mp.alloc(GFP.NOFS)!,
    freeLog: (p) => mp.free(p),
  };
  return { transaction: (_worst, body) => body(tx), idle: () => 0 };
}

export const mempool: LabPolicy = {
  name: 'mempool',
  summary: 'log items from a shared mempool (never fails, waits); metadata reads plain GFP_NOFS',
  system: SYSTEM_3_19_TEXT,
  pool: SYSTEM_3_19,
  setup({ pool, shape, fsWorkers }) {
    // Enough elements for every transaction that can be open at once (one
    // per fs worker and the hog's append), each with its most pinned blocks.
    const minNr = shape.fs.pins[1] * (fsWorkers + 1);
    const mp = Mempool.create(pool, { minNr, order: 0, name: 'fs-log-items' });
    return { shared: mp.handle, idle: () => mp.stats().currNr, close: () => mp.destroy() };
  },
  fs: mempoolFs,
};
