/**
 * stats() is a snapshot (DESIGN §5): while other threads allocate and free
 * — blocks of several orders, and order-0 pages through their page caches —
 * every read on the main thread adds up exactly:
 *   free + cached + allocated == total, the page caches add up to cached,
 *   and buddyinfo adds up to free.
 * Native code takes it under the zone lock; before, counters read one by
 * one without the lock broke the identity in a few reads per thousand.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { PAGE_SIZE, Pool } from '../../../src/index.js';
import { expectAccounting } from '../../fixtures/expect.js';
import { TestWorker } from '../../fixtures/workers.js';

const WORKERS = 2;
const READS = 20_000;
const pools: Pool[] = [];
const workers: TestWorker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
  for (const p of pools.splice(0)) if (!p.closed) p.close();
});

describe('stats() under concurrent allocation', () => {
  it(`${READS} reads while ${WORKERS} workers churn: every one adds up`, async () => {
    const pool = Pool.create({ size: 1024 * PAGE_SIZE, maxOrder: 4, watermarks: { min: 0, low: 0, high: 0 } });
    pools.push(pool);
    const flags = new SharedArrayBuffer(8);
    const f = new Int32Array(flags);
    for (let i = 0; i < WORKERS; i++) {
      workers.push(new TestWorker('./churn-worker.mjs', { handle: pool.handle, seed: 0x51ed27 * (i + 1), flags }));
    }
    // Wait (without blocking the event loop) until every worker churns.
    while (Atomics.load(f, 0) < WORKERS) await Atomics.waitAsync(f, 0, Atomics.load(f, 0), 1000).value;

    let broken = 0;
    let changes = 0;
    let sawCached = 0;
    let first = '';
    let last = -1;
    for (let i = 0; i < READS; i++) {
      const s = pool.stats();
      const cachedSum = Object.values(s.cachedByTask).reduce((a, b) => a + b, 0);
      const inBuddy = s.buddyinfo.reduce((sum, n, o) => sum + n * 2 ** o, 0);
      const ok =
        s.freePages + s.cachedPages + s.allocatedPages === s.totalPages &&
        s.allocatedPages >= 0 &&
        cachedSum === s.cachedPages &&
        inBuddy === s.freePages;
      if (!ok) {
        broken++;
        first ||= JSON.stringify({ free: s.freePages, cached: s.cachedPages, allocated: s.allocatedPages, cachedSum, inBuddy });
      }
      if (s.cachedPages > 0) sawCached++;
      if (s.freePages !== last) changes++;
      last = s.freePages;
    }
    Atomics.store(f, 1, 1);
    const reports = await Promise.all(workers.map((w) => w.next()));
    expect(await Promise.all(workers.map((w) => w.exited()))).toEqual([0, 0]);

    expect(broken, `first inconsistent read: ${first}`).toBe(0);
    // The reads really raced the workers: the pool changed under them, with
    // pages in the workers' caches.
    expect(changes).toBeGreaterThan(1);
    expect(sawCached).toBeGreaterThan(0);
    for (const r of reports) expect(r.ops).toBeGreaterThan(0);
    expectAccounting(pool, 0);
    expect(pool.stats().freePages).toBe(1024);
  });
});
