/**
 * Pieces the policies share: the two systems they run on, and the plain
 * filesystem that allocates with GFP_NOFS (plus extra flags) inside its
 * transactions and nothing before them.
 */
import { GFP, type Page, type PoolOptions } from '../../index.js';
import type { FsContext, FsPolicy, TxAlloc } from '../api.js';

export { isEnomem } from '../hooks.js';

/** 2015 as shipped in 3.19: small NOFS allocations fail, OOM killer without the reaper (4.6). */
export const SYSTEM_3_19: Pick<PoolOptions, 'behavior' | 'oom'> = { behavior: 'linux-3.19', oom: { reaper: false } };
export const SYSTEM_3_19_TEXT = 'linux-3.19 (NOFS may fail), OOM killer without reaper';

/** A transaction allocator with a fixed mask: NOFS | extra. */
export function plainTx(ctx: FsContext, extra = 0): TxAlloc {
  const gfp = GFP.NOFS | extra;
  const pool = ctx.pool;
  return {
    cache: (_willAllocate, fn) => fn(gfp),
    logPage: () => pool.alloc(gfp),
    freeLog: (p: Page) => pool.free(p),
  };
}

/** The filesystem that takes nothing up front: every allocation happens inside the transaction. */
export function plainFs(ctx: FsContext, extra = 0): FsPolicy {
  const tx = plainTx(ctx, extra);
  return {
    transaction: (_worst, body) => body(tx),
    idle: () => 0,
  };
}
