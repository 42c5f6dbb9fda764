/**
 * caller-retry: XFS's kmem_alloc loop (retryAllocSync) — the caller, not
 * the allocator, retries forever with memalloc_retry_wait between tries and
 * the "possible memory allocation deadlock" canary every 100 failures.
 * Page-cache calls retry the same way: wait in the loop until a page can be
 * had, give it back, and call again (as xfs_buf's page loop did).
 */
import { GFP, retryAllocSync } from '../../index.js';
import { isEnomem, SYSTEM_3_19, SYSTEM_3_19_TEXT } from './common.js';
import type { FsContext, FsPolicy, LabPolicy, TxAlloc } from '../api.js';

function retryFs(ctx: FsContext): FsPolicy {
  const pool = ctx.pool;
  const tx: TxAlloc = {
    cache<T>(_willAllocate: boolean, fn: (gfp: number) => T): T {
      for (;;) {
        try {
          return fn(GFP.NOFS | GFP.NOWARN);
        } catch (e) {
          if (!isEnomem(e)) throw e;
        }
        pool.free(retryAllocSync(pool, GFP.NOFS, { caller: `xfs_buf_read (${ctx.caller})` }));
      }
    },
    logPage: () => retryAllocSync(pool, GFP.NOFS, { caller: `xfs_trans_alloc (${ctx.caller})` }),
    freeLog: (p) => pool.free(p),
  };
  return { transaction: (_worst, body) => body(tx), idle: () => 0 };
}

export const callerRetry: LabPolicy = {
  name: 'caller-retry',
  summary: "XFS's loop: retryAllocSync retries GFP_NOFS forever, with a canary every 100 failures",
  system: SYSTEM_3_19_TEXT,
  pool: SYSTEM_3_19,
  fs: retryFs,
};
