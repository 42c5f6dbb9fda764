/**
 * Reservations: Chinner's watermark raise and Morton's tokens, on real
 * workers contending for the pool.
 */
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { GFP, Pool } from '../../../src/index.js';
import { takeAll } from '../../fixtures/pool.js';
import { until } from '../../fixtures/workers.js';

const fixture = new URL('../../fixtures/reserve-worker.mjs', import.meta.url);
const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

function spawn(pool: Pool, scenario: string, pages: number) {
  const worker = new Worker(fixture, { workerData: { handle: pool.handle, scenario, pages } });
  workers.push(worker);
  const messages: any[] = [];
  worker.on('message', (m) => messages.push(m));
  const next = () =>
    new Promise<any>((resolve, reject) => {
      const n = messages.length;
      const check = setInterval(() => {
        if (messages.length > n) {
          clearInterval(check);
          resolve(messages[n]);
        }
      }, 1);
      worker.once('error', reject);
    });
  return { worker, messages, next };
}

const newPool = () => Pool.create({ size: 1000 * 4096, maxOrder: 4, watermarks: { min: 100, low: 120, high: 140 }, pcp: false });

describe('watermark reservations', () => {
  it('reserve(n) lowers what non-RESERVE callers can take by n; RESERVE inside run() uses it', () => {
    const pool = newPool();
    const r = pool.reserve(200);
    expect(pool.stats().reservedPages).toBe(200);
    const mine = takeAll(pool, GFP.KERNEL | GFP.NORETRY);
    expect(pool.stats().freePages).toBe(300); // min 100 + 200 reserved
    // GFP.RESERVE outside the reservation's scope grants nothing.
    expect(takeAll(pool, GFP.KERNEL | GFP.NORETRY | GFP.RESERVE)).toHaveLength(0);
    const used = r.run(() => takeAll(pool, GFP.KERNEL | GFP.NORETRY | GFP.RESERVE));
    expect(used).toHaveLength(200);
    expect(r.remaining).toBe(0);
    expect(pool.stats().freePages).toBe(100); // the pool is at min
    expect(pool.stats().reservedPages).toBe(0);
    r.release();
    pool.freeBulk([...mine, ...used]);
    pool.checkInvariants();
  });

  it('costs nothing to wait for when memory is plentiful, and `using` releases it', () => {
    const pool = newPool();
    {
      using r = pool.reserve(50);
      expect(r.remaining).toBe(50);
      expect(pool.stats().reservedPages).toBe(50);
      expect(pool.stats().vmstat.reserve_waits).toBe(0);
    }
    expect(pool.stats().reservedPages).toBe(0);
  });

  it('reserveAsync waits while free memory is below the raised mark and completes when a worker frees', async () => {
    const pool = newPool();
    const hog = spawn(pool, 'hold', 800);
    expect((await hog.next()).held).toBe(800);
    let done = false;
    const pending = pool.reserveAsync(150).then((r) => {
      done = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(done).toBe(false);
    expect(pool.stats().vmstat.reserve_waits).toBe(1);
    hog.worker.postMessage('free');
    const r = await pending;
    expect(r.remaining).toBe(150);
    r.release();
  });

  it('reserve() in a worker blocks until another thread frees', async () => {
    const pool = newPool();
    const mine = pool.allocBulk(800, GFP.KERNEL);
    const w = spawn(pool, 'reserve', 150);
    // Wait until the worker is blocked in reserve(), then give it the memory.
    while (pool.stats().vmstat.reserve_waits === 0) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 30));
    expect(w.messages).toHaveLength(0);
    pool.freeBulk(mine);
    const m = await w.next();
    expect(m.reserved).toBe(150);
    expect(m.waitedMs).toBeGreaterThan(20);
    expect(pool.stats().reservedPages).toBe(150);
    // A worker that exits while holding a reservation leaves nothing reserved.
    await w.worker.terminate();
    await until(() => pool.stats().reservedPages === 0);
    expect(pool.stats().reservedPages).toBe(0);
    pool.checkInvariants();
  });

  it('abort and timeout leave nothing reserved', async () => {
    const pool = newPool();
    const mine = pool.allocBulk(800, GFP.KERNEL);
    await expect(pool.reserveAsync(150, { timeoutMs: 50 })).rejects.toMatchObject({ name: 'TimeoutError' });
    const ac = new AbortController();
    const p = pool.reserveAsync(150, { signal: ac.signal });
    setTimeout(() => ac.abort(), 30);
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    expect(pool.stats().reservedPages).toBe(0);
    expect(pool.stats().zoneinfo.waiters).toBe(0);
    expect(() => pool.reserve(150)).toThrow(expect.objectContaining({ code: 'ERR_WOULD_BLOCK' }));
    expect(pool.stats().reservedPages).toBe(0);
    pool.freeBulk(mine);
  });
});

describe('token reservations', () => {
  it('move the pages at reserve time; allocations in scope take them first', () => {
    const pool = newPool();
    const free0 = pool.stats().freePages;
    const r = pool.reserve(64, { mode: 'tokens' });
    expect(pool.stats().freePages).toBe(free0 - 64);
    expect(pool.stats().reservedTokens).toBe(64);
    const pages = r.run(() => Array.from({ length: 10 }, () => pool.alloc(GFP.KERNEL)));
    expect(pool.stats().freePages).toBe(free0 - 64); // taken from the tokens, not the pool
    expect(r.remaining).toBe(54);
    expect(pool.stats().reservedTokens).toBe(54);
    r.release();
    expect(pool.stats().freePages).toBe(free0 - 10);
    expect(pool.stats().reservedTokens).toBe(0);
    pool.freeBulk(pages);
    expect(pool.stats().freePages).toBe(free0);
    pool.checkInvariants();
  });
});
