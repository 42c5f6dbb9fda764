/**
 * preallocate: before taking the fs lock, allocate the transaction's worst
 * case with GFP_KERNEL (may reclaim the filesystem and call the OOM killer,
 * as no lock is held yet); every allocation inside the transaction then
 * consumes one preallocated page (a page-cache miss gets one freed right
 * before it allocates); the unused rest is freed at commit. Chinner's
 * "dumb, CPU and memory intensive" preallocation: tens of pages taken and
 * given back on every transaction, most of them never used.
 */
import { GFP, type Page } from '../../index.js';
import { isEnomem, SYSTEM_3_19, SYSTEM_3_19_TEXT } from './common.js';
import type { FsContext, FsPolicy, LabPolicy, TxAlloc } from '../api.js';

function preallocFs(ctx: FsContext): FsPolicy {
  const pool = ctx.pool;
  const stash: Page[] = [];
  const tx: TxAlloc = {
    cache<T>(willAllocate: boolean, fn: (gfp: number) => T): T {
      if (willAllocate && stash.length > 0) pool.free(stash.pop()!);
      return fn(GFP.NOFS);
    },
    logPage: () => stash.pop() ?? pool.alloc(GFP.NOFS),
    freeLog: (p) => pool.free(p),
  };
  const giveBack = () => {
    for (const p of stash.splice(0)) pool.free(p);
  };
  return {
    transaction(worst, body) {
      try {
        while (stash.length < worst) stash.push(pool.alloc(GFP.KERNEL));
      } catch (e) {
        giveBack();
        if (isEnomem(e)) ctx.refuse(`could not preallocate ${worst} pages`);
        throw e;
      }
      try {
        return body(tx);
      } finally {
        giveBack();
      }
    },
    idle: () => stash.length,
  };
}

export const preallocate: LabPolicy = {
  name: 'preallocate',
  summary: 'allocates the worst case with GFP_KERNEL before the fs lock, frees the unused rest at commit',
  system: SYSTEM_3_19_TEXT,
  pool: SYSTEM_3_19,
  fs: preallocFs,
};
