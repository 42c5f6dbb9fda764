/**
 * lockdep for reclaim: the kernel's fs_reclaim annotation. An allocation
 * that may enter filesystem reclaim (DIRECT_RECLAIM and FS in its mask,
 * after scopes) must not be made while holding a lock that filesystem
 * reclaim itself may need: reclaim would run a shrinker that waits for
 * that lock, held by the allocator that is waiting for reclaim. The
 * kernel reports the pair of stacks before the deadlock ever happens; so
 * does this, for SharedMutexes created with { reclaimFs: true }, when the
 * pool was created with { lockdep: true } (or NOFAIL_LOCKDEP=1).
 *
 * The fix is what the kernel asks for: allocate with GFP_NOFS, or inside
 * withGfpScope(GFP_SCOPE.NOFS, ...), while holding such a lock.
 */
import type { Attachment } from '../attachment.js';
import { formatGfp, GFP } from '../gfp.js';
import { warnOnce } from '../stats/warn.js';

/** A lock that filesystem reclaim may need, held by this thread: what the check reports. */
export interface ReclaimFsLock {
  readonly name: string;
  readonly id: number;
  /** The stack of the lock() that took it. */
  readonly stack: string;
}

/**
 * Who knows which reclaimFs locks this thread holds. The locks live above
 * the allocator (lib/mutex), so they register themselves here instead of the
 * allocator importing them: one provider per thread, SharedMutex's.
 */
let heldLocks: () => readonly ReclaimFsLock[] = () => [];

export function registerReclaimFsLocks(provider: () => readonly ReclaimFsLock[]): void {
  heldLocks = provider;
}

export function mayEnterFsReclaim(gfp: number): boolean {
  return (gfp & (GFP.DIRECT_RECLAIM | GFP.FS)) === (GFP.DIRECT_RECLAIM | GFP.FS);
}

/** Reports an allocation that may recurse into FS reclaim under a reclaimFs lock. Returns whether it did. */
export function checkFsReclaim(core: Attachment, gfp: number, order: number): boolean {
  if (!mayEnterFsReclaim(gfp)) return false;
  const held = heldLocks();
  if (held.length === 0) return false;
  const stack = new Error().stack ?? '';
  const frames = stack.slice(stack.indexOf('\n') + 1);
  const site = frames.split('\n').find((l) => !l.includes('/lockdep.') && !l.includes('/pool.')) ?? '';
  const names = held.map((h) => h.name).join(', ');
  core.vmstat.add('lockdep_reports');
  return warnOnce(
    `fs_reclaim:${held.map((h) => h.id).join(',')}:${site.trim()}`,
    'lockdep',
    `possible deadlock: an allocation that may enter filesystem reclaim (order:${order}, mode:${formatGfp(gfp)}) ` +
      `while holding ${names}, which filesystem reclaim may need; use GFP_NOFS or withGfpScope(GFP_SCOPE.NOFS) here`,
    {
      order,
      gfp,
      locks: held.map((h) => ({ name: h.name, id: h.id, acquiredAt: h.stack })),
      allocationStack: frames,
    },
  );
}
