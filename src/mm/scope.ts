/**
 * Scoped allocation contexts: the memalloc_*_save/restore family
 * (include/linux/sched/mm.h). Every allocation inside the scope, sync or
 * async (AsyncLocalStorage follows promises and callbacks), is adjusted by
 * applyScope() in the allocation's prologue (pool.ts), deep inside library
 * code included.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { markContextsUsed } from './context.js';
import { InvalidGfpError, InvalidArgTypeError } from '../errors.js';
import { GFP, type GfpMask } from './gfp.js';

export const GFP_SCOPE = Object.freeze({
  /** memalloc_nofs_save: allocations lose __GFP_FS. */
  NOFS: 0x1,
  /** memalloc_noio_save: allocations lose __GFP_IO and __GFP_FS. */
  NOIO: 0x2,
  /**
   * memalloc_noreclaim_save (PF_MEMALLOC): allocations never enter reclaim
   * and may use every reserve, unless they carry __GFP_NOMEMALLOC. Reclaim
   * itself runs in this scope; prefer a mempool for anything else.
   */
  NORECLAIM: 0x4,
});

const scopeStore = new AsyncLocalStorage<number>();
let scopesUsed = false;

/**
 * Runs `fn` with the scope flags added. Nesting restores only what it set
 * (memalloc_flags_restore): a NOFS scope inside a NOIO scope changes
 * nothing, and leaving it keeps NOIO.
 */
export function withGfpScope<T>(flags: number, fn: () => T): T {
  if (typeof flags !== 'number' || !Number.isInteger(flags) || flags < 0 || (flags & ~0x7) !== 0) {
    throw new InvalidGfpError(`scope flags must be a combination of GFP_SCOPE bits; received ${String(flags)}`);
  }
  if (typeof fn !== 'function') throw new InvalidArgTypeError('fn must be a function');
  scopesUsed = true;
  markContextsUsed();
  return scopeStore.run((scopeStore.getStore() ?? 0) | flags, fn);
}

/** The scope flags in force here (0 outside any scope). */
export function currentScope(): number {
  return scopesUsed ? (scopeStore.getStore() ?? 0) : 0;
}

/** current_gfp_context(): NOIO clears IO and FS, else NOFS clears FS. */
export function applyScope(mask: GfpMask, scope: number): GfpMask {
  if (scope & GFP_SCOPE.NOIO) return mask & ~(GFP.IO | GFP.FS);
  if (scope & GFP_SCOPE.NOFS) return mask & ~GFP.FS;
  return mask;
}
