/**
 * lockdep for reclaim: an allocation that may enter filesystem reclaim
 * while a reclaimFs lock is held is reported with both stacks, before any
 * deadlock can happen.
 */
import { describe, expect, it } from 'vitest';
import { GFP, GFP_SCOPE, onWarning, Pool, SharedMutex, type Warning, withGfpScope } from '../../../src/index.js';

async function reports(fn: () => void): Promise<Warning[]> {
  const seen: Warning[] = [];
  const off = onWarning((w) => w.kind === 'lockdep' && seen.push(w));
  fn();
  await new Promise((r) => setTimeout(r, 20));
  off();
  return seen;
}

describe('lockdep: fs_reclaim', () => {
  it('reports a GFP_KERNEL allocation under a reclaimFs lock, with the lock and allocation stacks', async () => {
    const pool = Pool.create({ size: '1MiB', lockdep: true });
    const fsLock = new SharedMutex({ name: 'inode_lock', reclaimFs: true });
    const seen = await reports(() => {
      fsLock.withLock(function transactionBody() {
        pool.free(pool.alloc(GFP.KERNEL));
      }, pool);
    });
    expect(seen).toHaveLength(1);
    const w = seen[0] as any;
    expect(w.message).toMatch(/may enter filesystem reclaim .*mode:0xcc0\(GFP_KERNEL\).* holding inode_lock/);
    expect(w.locks[0].name).toBe('inode_lock');
    expect(w.locks[0].acquiredAt).toMatch(/withLock/);
    expect(w.allocationStack).toMatch(/transactionBody/);
    expect(pool.stats().vmstat.lockdep_reports).toBe(1);
  });

  it('is quiet for NOFS, for a NOFS scope, for a lock without reclaimFs, and with lockdep off', async () => {
    const pool = Pool.create({ size: '1MiB', lockdep: true });
    const fsLock = new SharedMutex({ name: 'fs', reclaimFs: true });
    const plain = new SharedMutex({ name: 'plain' });
    const seen = await reports(() => {
      fsLock.withLock(() => pool.free(pool.alloc(GFP.NOFS)), pool);
      fsLock.withLock(() => withGfpScope(GFP_SCOPE.NOFS, () => pool.free(pool.alloc(GFP.KERNEL))), pool);
      fsLock.withLock(() => pool.free(pool.alloc(GFP.ATOMIC)), pool);
      plain.withLock(() => pool.free(pool.alloc(GFP.KERNEL)), pool);
      const off = Pool.create({ size: '1MiB' });
      const fsLock2 = new SharedMutex({ name: 'fs2', reclaimFs: true });
      fsLock2.withLock(() => off.free(off.alloc(GFP.KERNEL)), off);
    });
    expect(seen).toHaveLength(0);
  });
});
