/**
 * Real worker_threads on one pool: four workers attach with the handle and
 * each does 100,000 allocations and frees of random orders, stamping every
 * page with its pfn and the worker's id and checking the stamp before it
 * frees. No page may be handed to two workers at once, and when they are
 * done the pool is whole again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { PAGE_SIZE, Pool } from '../../../src/index.js';
import { expectAccounting } from '../../fixtures/expect.js';
import { type Message, TestWorker } from '../../fixtures/workers.js';

const WORKERS = 4;
const OPS = 100_000;
const pools: Pool[] = [];
const workers: TestWorker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
  for (const p of pools.splice(0)) if (!p.closed) p.close();
});

describe('contention', () => {
  it(`${WORKERS} workers x ${OPS} operations: no page shared, nothing lost`, async () => {
    const pool = Pool.create({ size: 8192 * PAGE_SIZE, maxOrder: 10, watermarks: { min: 0, low: 0, high: 0 } });
    pools.push(pool);
    const tasksBefore = pool.stats().tasks;
    const barrier = new SharedArrayBuffer(8);
    const bar = new Int32Array(barrier);
    for (let id = 0; id < WORKERS; id++) {
      workers.push(
        new TestWorker('./contention-worker.mjs', {
          handle: pool.handle,
          id,
          ops: OPS,
          maxOrder: 4,
          maxHeld: 64,
          seed: 0x9e3779b9 * (id + 1),
          barrier,
        }),
      );
    }
    // Everyone attached and waiting: start them together.
    const start = Date.now();
    while (Atomics.load(bar, 0) < WORKERS) {
      expect(Date.now() - start, 'workers reach the start barrier').toBeLessThan(15_000);
      await new Promise((r) => setTimeout(r, 2));
    }
    expect(pool.stats().threads).toBe(WORKERS + 1);
    expect(pool.stats().tasks).toBe(tasksBefore + WORKERS);
    Atomics.store(bar, 1, 1);
    Atomics.notify(bar, 1);

    const reports: Message[] = await Promise.all(workers.map((w) => w.next(30_000)));
    for (const r of reports) {
      expect(r.mismatches, `worker ${r.id}: pages whose stamp changed under it`).toBe(0);
      expect(r.allocs + r.failures).toBeGreaterThan(OPS / 3);
      expect(r.allocs).toBe(r.frees);
      expect(r.maxThreadPages).toBeGreaterThan(0);
      // It held nothing at the end: what its task still owned was its page cache, and close() returned exactly that.
      expect(r.threadPagesAtEnd).toBe(0);
      expect(r.returnedOnClose).toBe(r.cachedAtEnd);
    }
    expect(reports.reduce((n, r) => n + r.allocs, 0)).toBeGreaterThan(WORKERS * (OPS / 3));
    // The pool is big enough for everyone's working set: failures would be a leak.
    expect(reports.reduce((n, r) => n + r.failures, 0)).toBe(0);

    const codes = await Promise.all(workers.map((w) => w.exited()));
    expect(codes).toEqual(new Array(WORKERS).fill(0));
    const s = pool.stats();
    expect(s.freePages).toBe(s.totalPages);
    expect(s.allocatedPages).toBe(0);
    expect(s.threads).toBe(1);
    expect(s.tasks).toBe(tasksBefore);
    expect(s.cachedByTask).toEqual({});
    expect(s.counters.allocs).toBe(s.counters.frees);
    expect(s.counters.pgalloc).toBe(s.counters.pgfree);
    expect(s.buddyinfo).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8]);
    expectAccounting(pool, 0);
  });
});
