/**
 * The slow path across threads: linux-3.19 versus linux-4.0 for small
 * NOFS allocations with nothing to reclaim, and the wake-up of a blocked
 * worker when another thread frees.
 */
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { GFP, Pool } from '../../../src/index.js';
import { takeAll } from '../../fixtures/pool.js';
import { until } from '../../fixtures/workers.js';

const fixture = new URL('../../fixtures/alloc-worker.mjs', import.meta.url);
const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

function spawn(data: object): Worker {
  const w = new Worker(fixture, { workerData: data });
  workers.push(w);
  return w;
}

const next = (w: Worker) => new Promise<any>((resolve, reject) => {
  w.once('message', resolve);
  w.once('error', reject);
});

describe('small NOFS allocations with nothing reclaimable', () => {
  it("fail with ENOMEM under behavior 'linux-3.19'", async () => {
    const pool = Pool.create({ size: 64 * 4096, behavior: 'linux-3.19', watermarks: { min: 0, low: 0, high: 0 }, pcp: false });
    const held = takeAll(pool, GFP.NOWAIT | GFP.HIGH | GFP.NOMEMALLOC);
    expect(pool.stats().freePages).toBe(0);
    const w = spawn({ handle: pool.handle, scenario: 'alloc-once', gfp: GFP.NOFS });
    const r = await next(w);
    expect(r.ok).toBe(false);
    expect(r.code).toBe('ENOMEM');
    expect(r.message).toMatch(/page allocation failure: order:0, mode:0xc40\(GFP_NOFS\)/);
    expect(pool.stats().vmstat.alloc_fail).toBeGreaterThanOrEqual(1);
    expect(pool.stats().vmstat.allocstall).toBeGreaterThanOrEqual(1);
    pool.freeBulk(held);
    pool.checkInvariants();
  });

  it("wait under 'linux-4.0' and succeed when another thread frees a page (wake-up latency)", async () => {
    const n = 60;
    const pool = Pool.create({ size: 128 * 4096, watermarks: { min: 0, low: 0, high: 0 }, pcp: false });
    const held = takeAll(pool, GFP.NOWAIT | GFP.HIGH | GFP.NOMEMALLOC);
    const w = spawn({ handle: pool.handle, scenario: 'alloc-loop', gfp: GFP.NOFS, count: n });
    const latencies: number[] = [];
    const arrivals: any[] = [];
    w.on('message', (m) => arrivals.push(m));
    for (let i = 0; i < n; i++) {
      await until(() => pool.stats().zoneinfo.waiters > 0);
      const t0 = performance.timeOrigin + performance.now();
      pool.free(held.pop()!);
      await until(() => arrivals.length > i);
      expect(arrivals[i].ok).toBe(true);
      latencies.push((arrivals[i].t - t0) * 1000);
    }
    await until(() => arrivals.some((m) => m.done));
    latencies.sort((a, b) => a - b);
    const p = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
    console.log(`wake-up latency after a free, ${n} samples: p50 ${p(0.5).toFixed(0)} us, p99 ${p(0.99).toFixed(0)} us, max ${p(1).toFixed(0)} us`);
    expect(pool.stats().zoneinfo.waiters).toBe(0);
    pool.freeBulk(held);
    await until(() => pool.stats().freePages === pool.totalPages);
    pool.checkInvariants();
  });

  it('NOFAIL waits instead of failing, even under fault injection', async () => {
    const pool = Pool.create({ size: 64 * 4096, watermarks: { min: 0, low: 0, high: 0 }, pcp: false });
    const held = takeAll(pool, GFP.NOWAIT | GFP.HIGH | GFP.NOMEMALLOC);
    const w = spawn({ handle: pool.handle, scenario: 'alloc-loop', gfp: GFP.KERNEL | GFP.NOFAIL | GFP.RETRY_MAYFAIL, count: 1 });
    const got = next(w);
    await until(() => pool.stats().zoneinfo.waiters > 0);
    pool.free(held.pop()!);
    expect((await got).ok).toBe(true);
    pool.freeBulk(held);
  });
});
