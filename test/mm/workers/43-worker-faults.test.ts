/**
 * Workers terminated at awkward moments: inside an async wait, while
 * holding the OOM lock, and while one of their shrinkers runs for another
 * thread. Every time: no page leaked, no waiter left, the OOM lock comes
 * back, and the other threads keep going — each bounded in time.
 * (A sync wait, plain holding, and a held reservation: 41-terminate,
 * 71-reserve.)
 */
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { GFP, Pool } from '../../../src/index.js';
import { takeAll } from '../../fixtures/pool.js';
import { until } from '../../fixtures/workers.js';

const fixture = new URL('../../fixtures/fault-worker.mjs', import.meta.url);
const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

async function start(pool: Pool, scenario: string, pages: number) {
  const w = new Worker(fixture, { workerData: { handle: pool.handle, scenario, pages } });
  workers.push(w);
  const messages: any[] = [];
  w.on('message', (m) => messages.push(m));
  await until(() => messages.some((m) => m.ready), 10_000);
  return { w, messages };
}

describe('worker faults', () => {
  it('terminated inside allocAsync: its pages come back and no waiter is left', async () => {
    const pool = Pool.create({ size: 256 * 4096, watermarks: { min: 0, low: 0, high: 0 }, pcp: false });
    const { w } = await start(pool, 'async-wait', 100);
    const mine = takeAll(pool, GFP.NOWAIT | GFP.HIGH | GFP.MEMALLOC);
    w.postMessage('go');
    await until(() => pool.stats().zoneinfo.waiters === 1, 5000);
    await w.terminate();
    await until(() => pool.stats().zoneinfo.waiters === 0, 2000);
    expect(pool.stats().freePages).toBe(100);
    pool.freeBulk(mine);
    expect(pool.stats().freePages).toBe(pool.totalPages);
    pool.checkInvariants();
  });

  it('terminated while holding the OOM lock: the next OOM takes the lock back and kills', async () => {
    const pool = Pool.create({ size: 256 * 4096, watermarks: { min: 4, low: 8, high: 12 }, pcp: false, oom: true });
    const victim = await start(pool, 'async-wait', 0); // an idle worker to be the victim
    void victim;
    const big = new Worker(new URL('../../fixtures/oom-worker.mjs', import.meta.url), {
      workerData: { handle: pool.handle, name: 'big', pages: 150 },
    });
    workers.push(big);
    await new Promise((r) => big.once('message', r));
    const locker = await start(pool, 'oom-lock', 0);
    await locker.w.terminate();
    const mine = takeAll(pool, GFP.NOWAIT | GFP.HIGH | GFP.MEMALLOC);
    const page = await pool.allocAsync(GFP.KERNEL, 0, { timeoutMs: 5000 });
    expect(pool.stats().vmstat.oom_kill).toBe(1);
    pool.free(page);
    pool.freeBulk(mine);
  });

  it('terminated while its shrinker runs for another thread: reclaim gives up after its bound, pages come back', async () => {
    const pool = Pool.create({ size: 256 * 4096, watermarks: { min: 0, low: 0, high: 0 }, pcp: false });
    const { w, messages } = await start(pool, 'stuck-shrinker', 120);
    const mine = takeAll(pool, GFP.NOWAIT | GFP.HIGH | GFP.MEMALLOC);
    // Our allocation asks the worker's shrinker, which blocks; we wait for
    // it at most REMOTE_TIMEOUT_MS per reclaim, and keep going.
    const pending = pool.allocAsync(GFP.KERNEL, 0, { timeoutMs: 10_000 });
    await until(() => messages.some((m) => m.scanning), 5000);
    await w.terminate();
    const page = await pending; // the worker's exit returned its 120 pages
    expect(pool.stats().vmstat.remote_reclaim_timeouts).toBeGreaterThan(0);
    pool.free(page);
    pool.freeBulk(mine);
    expect(pool.stats().freePages).toBe(pool.totalPages);
    pool.checkInvariants();
  });
});
