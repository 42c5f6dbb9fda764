/**
 * What one tenant of a pool can see of another's data: GFP.ZERO hands out
 * zeros whoever wrote the page last, zeroOnFree leaves nothing behind in
 * a freed page (nor in one taken back from a thread that exited), and
 * poisoning reports a write after free.
 *
 * Each property is checked on the very page the other tenant wrote (same
 * pfn), and next to a control that shows what the property hides: without
 * ZERO or zeroOnFree the old bytes are still there, so a pool that stopped
 * zeroing would fail these tests.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { GFP, onWarning, type Page, PAGE_SIZE, Pool, type Warning } from '../../../src/index.js';
import { resetWarnings } from '../../../src/mm/stats/warn.js';
import { expectAccounting } from '../../fixtures/expect.js';
import { TestWorker } from '../../fixtures/workers.js';

const TOTAL = 64;
const TENANT_PAGES = 16;
const TENANT_BYTE = 0xa5;

const pools: Pool[] = [];
const workers: TestWorker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
  for (const p of pools.splice(0)) if (!p.closed) p.close();
});

/** A pool every page of which the main thread can take (no watermarks), without a page cache on this thread. */
function create(options: { zeroOnFree?: boolean } = {}): Pool {
  const p = Pool.create({ size: TOTAL * PAGE_SIZE, watermarks: { min: 0, low: 0, high: 0 }, pcp: false, ...options });
  pools.push(p);
  return p;
}

/**
 * Tenant A, in a worker: fills TENANT_PAGES pages with TENANT_BYTE and frees
 * them ('free') or exits holding them ('exit'). Resolves with their pfns
 * once the worker has exited, i.e. once every page is back in the pool.
 */
async function tenant(pool: Pool, mode: 'free' | 'exit'): Promise<number[]> {
  const w = new TestWorker('./tenant-worker.mjs', { handle: pool.handle, pages: TENANT_PAGES, byte: TENANT_BYTE, mode });
  workers.push(w);
  const { pfns } = await w.next();
  expect(await w.exited()).toBe(0);
  expect(pfns).toHaveLength(TENANT_PAGES);
  expect(pool.stats().freePages).toBe(TOTAL);
  return pfns as number[];
}

/**
 * Tenant B: takes every page of the pool with `gfp` (so certainly the ones
 * A wrote) and returns, for each of A's pfns, how many of its bytes are
 * not zero; then gives every page back.
 */
function nonZeroBytes(pool: Pool, gfp: number, pfns: number[]): number[] {
  const pages = new Map<number, Page>();
  for (let i = 0; i < TOTAL; i++) {
    const p = pool.alloc(gfp);
    pages.set(p.pfn, p);
  }
  const counts = pfns.map((pfn) => {
    const p = pages.get(pfn);
    if (p === undefined) throw new Error(`pfn ${pfn} was not handed out`);
    return p.bytes.reduce((n, b) => n + (b === 0 ? 0 : 1), 0);
  });
  pool.freeBulk([...pages.values()]);
  return counts;
}

const ALL = Array(TENANT_PAGES).fill(PAGE_SIZE);
const NONE = Array(TENANT_PAGES).fill(0);

describe('GFP.ZERO', () => {
  it('through this thread\'s page cache: the page just freed comes back, zeroed', () => {
    const pool = Pool.create({ size: '1MiB' });
    pools.push(pool);
    const a = pool.alloc();
    a.bytes.fill(0xee);
    pool.free(a);
    // Control: the cache is LIFO, so the next allocation is the same page,
    // and without ZERO it still holds what the last owner wrote.
    const b = pool.alloc();
    expect(b.pfn).toBe(a.pfn);
    expect(b.bytes.every((x) => x === 0xee)).toBe(true);
    pool.free(b);
    const c = pool.alloc(GFP.KERNEL | GFP.ZERO);
    expect(c.pfn).toBe(a.pfn);
    expect(c.bytes.every((x) => x === 0)).toBe(true);
    pool.free(c);
    // The bulk path too.
    const bulk = pool.allocBulk(8);
    for (const p of bulk) p.bytes.fill(0xee);
    pool.freeBulk(bulk);
    const again = pool.allocBulk(8, GFP.KERNEL | GFP.ZERO);
    expect(new Set(again.map((p) => p.pfn))).toEqual(new Set(bulk.map((p) => p.pfn)));
    for (const p of again) expect(p.bytes.every((x) => x === 0)).toBe(true);
  });

  it.each(['free', 'exit'] as const)('after another thread wrote the pages (and %s): zeros with ZERO, its bytes without', async (mode) => {
    const pool = create();
    const pfns = await tenant(pool, mode);
    // Control: without ZERO, B reads every byte A wrote.
    expect(nonZeroBytes(pool, GFP.KERNEL, pfns)).toEqual(ALL);
    expect(nonZeroBytes(pool, GFP.KERNEL | GFP.ZERO, pfns)).toEqual(NONE);
    expectAccounting(pool, 0);
  });
});

describe('zeroOnFree', () => {
  it('a freed page holds zeros: through the view kept from before the free, and in the same page allocated again', () => {
    const pool = Pool.create({ size: '1MiB', zeroOnFree: true });
    pools.push(pool);
    const a = pool.alloc();
    a.bytes.fill(0x5a);
    const view = a.bytes;
    pool.free(a);
    expect(view.every((x) => x === 0)).toBe(true);
    const b = pool.alloc(); // no ZERO: the zeros are zeroOnFree's
    expect(b.pfn).toBe(a.pfn);
    expect(b.bytes.every((x) => x === 0)).toBe(true);
    pool.free(b);
    const bulk = pool.allocBulk(8);
    for (const p of bulk) p.bytes.fill(1);
    const views = bulk.map((p) => p.bytes);
    pool.freeBulk(bulk);
    for (const v of views) expect(v.every((x) => x === 0)).toBe(true);
    const again = pool.allocBulk(8);
    expect(new Set(again.map((p) => p.pfn))).toEqual(new Set(bulk.map((p) => p.pfn)));
    for (const p of again) expect(p.bytes.every((x) => x === 0)).toBe(true);
  });

  it.each(['free', 'exit'] as const)('pages another thread wrote and gave back (%s) hold zeros; without it, its bytes', async (mode) => {
    const zeroed = create({ zeroOnFree: true });
    expect(nonZeroBytes(zeroed, GFP.KERNEL, await tenant(zeroed, mode))).toEqual(NONE);
    expectAccounting(zeroed, 0);
    // Control: the same tenant on a pool without zeroOnFree leaves its bytes behind.
    const plain = create();
    expect(nonZeroBytes(plain, GFP.KERNEL, await tenant(plain, mode))).toEqual(ALL);
  });

  it('is exclusive with poison', () => {
    expect(() => Pool.create({ size: '1MiB', zeroOnFree: true, poison: true })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });
});

describe('poison', () => {
  it.each([
    ['without a page cache', { pcp: false as const }],
    ['through the page cache', {}],
  ])('a write after free is reported as use-after-free on the next allocation of the page (%s)', async (_, options) => {
    // The warning is rate-limited per kind: start from a clean window.
    resetWarnings();
    const pool = Pool.create({ size: '1MiB', poison: true, ...options });
    pools.push(pool);
    let off = () => {};
    const warned = new Promise<Warning>((resolve) => {
      off = onWarning((w) => w.kind === 'use-after-free' && resolve(w));
    });
    try {
      const a = pool.alloc();
      const stale = a.bytes;
      pool.free(a);
      expect(stale.every((x) => x === 0x6b)).toBe(true);
      stale[123] = 0; // use after free
      const b = pool.alloc();
      expect(b.pfn).toBe(a.pfn);
      expect(pool.stats().vmstat.page_poison_errors).toBe(1);
      const w = await warned;
      expect(w).toMatchObject({ code: 'NOFAIL_USE_AFTER_FREE', kind: 'use-after-free', pfn: a.pfn, order: 0, offset: 123, value: 0 });
      expect(w.message).toBe(`page poison check failed: pfn ${a.pfn} order 0 was written after it was freed (offset 123: 0x0)`);
      // A clean free and reallocation of the same page finds nothing.
      pool.free(b);
      const c = pool.alloc();
      expect(c.pfn).toBe(a.pfn);
      expect(pool.stats().vmstat.page_poison_errors).toBe(1);
    } finally {
      off();
    }
  });
});
