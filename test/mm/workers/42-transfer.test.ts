/**
 * Pages crossing threads: pool.transfer(page) in one thread, the plain
 * descriptor through postMessage, pool.adopt(descriptor) in the other,
 * which then reads the sender's bytes through its own view of the region.
 * The sender's handle is dead afterwards, the ledger follows the page, and
 * a descriptor adopts once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { GFP, type Page, PAGE_SIZE, Pool, type PoolOptions } from '../../../src/index.js';
import { checkStamp, writeStamp } from '../../fixtures/pattern.mjs';
import { expectAccounting, expectCode } from '../../fixtures/expect.js';
import { TestWorker } from '../../fixtures/workers.js';

const TOTAL = 1024;
const pools: Pool[] = [];
const workers: TestWorker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
  for (const p of pools.splice(0)) if (!p.closed) p.close();
});

function create(options: PoolOptions = {}): Pool {
  const p = Pool.create({ size: TOTAL * PAGE_SIZE, watermarks: { min: 0, low: 0, high: 0 }, ...options });
  pools.push(p);
  return p;
}

function start(pool: Pool, data: Record<string, unknown>): TestWorker {
  const w = new TestWorker('./transfer-worker.mjs', { handle: pool.handle, ...data });
  workers.push(w);
  return w;
}

describe('transfer and adopt across threads', () => {
  it('worker -> main: main reads the worker pattern through its own view, then frees', async () => {
    const pool = create();
    const orders = [0, 0, 1, 3, 6];
    const w = start(pool, { mode: 'send', id: 7, orders });
    const sent = await w.next();
    expect(sent.descriptors).toHaveLength(orders.length);

    // In transit the pages belong to neither thread.
    const inTransit = orders.reduce((n, o) => n + 2 ** o, 0);
    expect(pool.stats().allocatedPages).toBe(sent.threadPages + inTransit);
    for (const d of sent.descriptors) {
      expect(d.pool).toBe(pool.handle.id);
      expect(pool._meta(d.pfn).owner).not.toBe(sent.taskId);
    }

    const pages: Page[] = sent.descriptors.map((d: never) => pool.adopt(d));
    for (const [i, p] of pages.entries()) {
      expect(p.order).toBe(orders[i]);
      expect(p.bytes.byteLength).toBe(PAGE_SIZE << orders[i]!);
      expect(checkStamp(p, 7, p.pfn), `page ${p.pfn}`).toBe(0);
      expect(pool._meta(p.pfn)).toMatchObject({ state: 'allocated', owner: pool.taskId });
    }
    expect(pool.stats().threadPages).toBe(inTransit);

    // The worker's handles are dead.
    w.post('check');
    const codes = await w.next();
    expect(codes.free).toEqual(orders.map(() => 'ERR_BAD_PAGE'));
    expect(codes.bytes).toEqual(orders.map(() => 'ERR_BAD_PAGE'));
    expect(codes.transfer).toEqual(orders.map(() => 'ERR_BAD_PAGE'));

    // A descriptor adopts once.
    for (const d of sent.descriptors) expectCode(() => pool.adopt(d), 'ERR_BAD_PAGE');

    w.post('bye');
    expect(await w.exited()).toBe(0);
    // The adopted pages stayed with main when the worker left.
    for (const p of pages) expect(checkStamp(p, 7, p.pfn)).toBe(0);
    expectAccounting(pool, inTransit);
    pool.freeBulk(pages);
    expectAccounting(pool, 0);
  });

  it('main -> worker: the worker adopts, checks and frees', async () => {
    const pool = create({ pcp: false });
    const w = start(pool, { mode: 'receive' });
    const pages = [pool.alloc(GFP.KERNEL, 0), pool.alloc(GFP.KERNEL, 2), pool.alloc(GFP.KERNEL, 5)];
    for (const p of pages) writeStamp(p, 3, p.pfn);
    const descriptors = pages.map((p) => pool.transfer(p));
    for (const p of pages) expectCode(() => p.bytes, 'ERR_BAD_PAGE');
    w.post({ descriptors, writer: 3 });
    const r = await w.next();
    expect(r).toMatchObject({ adopted: 3, bad: 0, codes: [null, null, null], owned: 1 + 4 + 32 });
    // Sending the same descriptors again: they were adopted and freed there.
    // (Which code a stale descriptor gets: test/mm/native/20-errors.test.ts.)
    w.post({ descriptors, writer: 3 });
    const again = await w.next();
    expect(again.adopted).toBe(0);
    for (const code of again.codes) expect(['ERR_BAD_PAGE', 'ERR_DOUBLE_FREE']).toContain(code);
    w.post('bye');
    expect(await w.exited()).toBe(0);
    expectAccounting(pool, 0);
    expect(pool.stats().freePages).toBe(TOTAL);
  });

  it('a page in transit outlives its sender', async () => {
    const pool = create();
    const w = start(pool, { mode: 'send-and-exit', id: 9, orders: [0, 2, 6] });
    const sent = await w.next();
    expect(await w.exited()).toBe(0);
    // The sender is gone and its own pages came back; the ones it sent did not.
    const s = pool.stats();
    expect(s.threads).toBe(1);
    expect(s.allocatedPages).toBe(1 + 4 + 64);
    const pages: Page[] = sent.descriptors.map((d: never) => pool.adopt(d));
    for (const p of pages) expect(checkStamp(p, 9, p.pfn)).toBe(0);
    expectAccounting(pool, 1 + 4 + 64);
    pool.freeBulk(pages);
    expectAccounting(pool, 0);
  });

  it('transferBulk and adoptBulk: all checked before any page moves; a bad descriptor puts back what was adopted', () => {
    const pool = create();
    const pages = [pool.alloc(), pool.alloc(GFP.KERNEL, 2), pool.alloc()];
    // A bad handle in the list: nothing moves.
    expectCode(() => pool.transferBulk([pages[0]!, pages[0]!]), 'ERR_BAD_PAGE');
    expectCode(() => pool.transferBulk([pages[1]!, {} as Page]), 'ERR_BAD_PAGE');
    expect(pages.every((p) => p.bytes.length > 0)).toBe(true);
    const ds = pool.transferBulk(pages);
    expect(ds.map((d) => d.order)).toEqual([0, 2, 0]);
    expectAccounting(pool, 1 + 4 + 1);
    // The third descriptor is stale: the first two are adopted, then go back in transit.
    const stale = { ...ds[2]!, gen: (ds[2]!.gen + 1) % 1024 };
    expectCode(() => pool.adoptBulk([ds[0]!, ds[1]!, stale]), 'ERR_BAD_PAGE');
    const back = pool.adoptBulk(ds);
    expect(back.map((p) => p.pfn)).toEqual(pages.map((p) => p.pfn));
    pool.freeBulk(back);
    expectAccounting(pool, 0);
  });
});

