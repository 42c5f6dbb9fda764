/**
 * mempool: the kernel's order of fallbacks, refill-first frees, and the
 * guarantee that minNr elements are obtainable by blocking callers as
 * long as elements come back — across real workers on a full pool.
 */
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { GFP, Mempool, Pool } from '../../../src/index.js';
import { takeAll } from '../../fixtures/pool.js';
import { lockHolder, setLockTestPause } from '../../../src/mm/task-lock.js';
import { until } from '../../fixtures/workers.js';

describe('mempool', () => {
  it('tries the pool without reclaim, then the reserve, then the full mask; null for callers that cannot sleep', () => {
    const pool = Pool.create({ size: 256 * 4096, watermarks: { min: 8, low: 16, high: 24 }, pcp: false });
    const mp = Mempool.create(pool, { minNr: 4 });
    expect(mp.stats().currNr).toBe(4);
    // Memory is free: the reserve is not touched.
    const a = mp.alloc(GFP.KERNEL)!;
    expect(mp.stats()).toMatchObject({ fromPool: 1, fromReserve: 0, currNr: 4 });
    // The pool is full but a shrinker could free memory: the reserve comes
    // first (no reclaim), then the full mask reclaims.
    const cache = takeAll(pool, GFP.NOWAIT | GFP.HIGH | GFP.MEMALLOC);
    let scans = 0;
    pool.registerShrinker({
      name: 'cache',
      needs: 'none',
      count: () => cache.length,
      scan: (n) => {
        scans++;
        let f = 0;
        while (f < n && cache.length) {
          pool.free(cache.pop()!);
          f++;
        }
        return f;
      },
    });
    const fromReserve = [1, 2, 3, 4].map(() => mp.alloc(GFP.KERNEL)!);
    expect(mp.stats()).toMatchObject({ fromReserve: 4, currNr: 0 });
    expect(scans).toBe(0);
    const full = mp.alloc(GFP.KERNEL)!;
    expect(scans).toBeGreaterThan(0);
    expect(mp.stats().fromFullMask).toBe(1);
    // A caller that cannot sleep gets null once everything is exhausted.
    takeAll(pool, GFP.NOWAIT | GFP.HIGH | GFP.MEMALLOC);
    cache.length = 0;
    expect(mp.alloc(GFP.ATOMIC)).toBeNull();
    // free() refills the reserve first.
    mp.free(a);
    expect(mp.stats()).toMatchObject({ currNr: 1, refilled: 1 });
    for (const p of [...fromReserve, full]) mp.free(p);
    expect(mp.stats().currNr).toBe(4);
    expect(mp.stats().returned).toBe(2);
    expect(() => mp.alloc(GFP.KERNEL | GFP.ZERO)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_GFP' }));
    mp.resize(2);
    expect(mp.stats().currNr).toBe(2);
    mp.destroy();
    pool.checkInvariants();
  });

  it('minNr elements are always obtainable by blocking callers while elements come back', async () => {
    const pool = Pool.create({ size: 128 * 4096, watermarks: { min: 0, low: 0, high: 0 }, pcp: false });
    const mp = Mempool.create(pool, { minNr: 2 });
    const hog = takeAll(pool, GFP.NOWAIT | GFP.HIGH | GFP.MEMALLOC);
    expect(pool.stats().freePages).toBe(0);
    const start = new Int32Array(new SharedArrayBuffer(8));
    const run = (take: number) =>
      new Promise<any>((resolve, reject) => {
        const w = new Worker(new URL('../../fixtures/mempool-worker.mjs', import.meta.url), {
          workerData: { handle: pool.handle, mempool: mp.handle, take, rounds: 300, start: start.buffer },
        });
        w.once('message', resolve);
        w.once('error', reject);
      });
    const all = Promise.all([run(1), run(1), run(1), run(1)]);
    // All four attached: start them together, so that they do overlap.
    await until(() => Atomics.load(start, 0) === 4);
    Atomics.store(start, 1, 1);
    Atomics.notify(start, 1);
    const results = await all;
    for (const r of results) expect(r.failed).toBe(0);
    expect(results.reduce((n, r) => n + r.got, 0)).toBe(300 * 4);
    // Four takers sharing a reserve of two: some of them waited their turn.
    expect(results.reduce((n, r) => n + r.stats.waits, 0)).toBeGreaterThan(0);
    expect(mp.stats().currNr).toBe(2);
    pool.freeBulk(hog);
    mp.destroy();
    expect(pool.stats().freePages).toBe(pool.totalPages);
    pool.checkInvariants();
  });

  it('free() racing destroy(): no lock is left held and the element goes back to the pool', () => {
    const pool = Pool.create({ size: 64 * 4096, watermarks: { min: 0, low: 0, high: 0 }, pcp: false });
    const mp = Mempool.create(pool, { minNr: 4 });
    const hog = takeAll(pool, GFP.NOWAIT | GFP.HIGH | GFP.MEMALLOC);
    const element = mp.alloc(GFP.KERNEL)!;
    expect(mp.stats().currNr).toBe(3);
    // destroy() runs after free() saw a live mempool with room in its
    // reserve, and before free() takes the lock (a test-only pause point):
    // the destroy retires the mempool's task, which the refill would make
    // the element's owner.
    setLockTestPause((point) => {
      if (point !== 'mempool-free') return;
      setLockTestPause(undefined);
      mp.destroy();
    });
    try {
      expect(() => mp.free(element)).not.toThrow();
    } finally {
      setLockTestPause(undefined);
    }
    expect(lockHolder(Atomics.load(new Int32Array(mp.handle.state), 0))).toBe(0);
    expect(mp.stats()).toMatchObject({ currNr: 0, returned: 1 });
    // Everything came back: the reserve (by destroy) and the element (by free).
    pool.freeBulk(hog);
    expect(pool.stats().freePages).toBe(pool.totalPages);
    pool.checkInvariants();
  });
});
