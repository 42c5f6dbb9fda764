/**
 * The buddy allocator through the JS surface: every order, exhaustion,
 * alignment, split, coalesce, fragmentation, and the 1 GiB acceptance run.
 * Pools here have no watermarks and no page cache unless a test says so, so
 * that every count is the buddy allocator's alone. "Nothing left" is probed
 * with GFP_NOWAIT, which fails at once: a GFP_KERNEL caller would enter
 * the slow path and wait (ERR_WOULD_BLOCK on the main thread).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { GFP, type Page, PAGE_SIZE, Pool, type PoolOptions } from '../../../src/index.js';
import { allFree, expectAccounting, expectCode } from '../../fixtures/expect.js';

const NO_WMARK = { min: 0, low: 0, high: 0 };
const pools: Pool[] = [];
function create(options: PoolOptions): Pool {
  const p = Pool.create({ watermarks: NO_WMARK, pcp: false, ...options });
  pools.push(p);
  return p;
}
afterEach(() => {
  for (const p of pools.splice(0)) p.close();
});

function allocUntilFailure(pool: Pool, order: number, gfp: number = GFP.NOWAIT): Page[] {
  const got: Page[] = [];
  for (;;) {
    try {
      got.push(pool.alloc(gfp, order));
    } catch (e) {
      expect((e as { code: string }).code).toBe('ENOMEM');
      return got;
    }
    if (got.length > pool.totalPages) throw new Error('handed out more blocks than the pool has pages');
  }
}

/** No two blocks share a page, and every block lies inside the pool. */
function expectDisjoint(pages: Page[], totalPages: number): void {
  const used = new Uint8Array(totalPages);
  for (const p of pages) {
    expect(p.pfn).toBeGreaterThanOrEqual(0);
    expect(p.pfn + 2 ** p.order).toBeLessThanOrEqual(totalPages);
    for (let i = p.pfn; i < p.pfn + 2 ** p.order; i++) {
      expect(used[i], `page ${i} handed out twice`).toBe(0);
      used[i] = 1;
    }
  }
}

describe('buddy allocator', () => {
  it('allocates aligned blocks at every order and exhausts exactly', () => {
    const maxOrder = 6;
    const total = 256;
    const p = create({ size: total * PAGE_SIZE, maxOrder });
    for (let order = 0; order <= maxOrder; order++) {
      const got = allocUntilFailure(p, order);
      expect(got.length, `order ${order}`).toBe(total >> order);
      for (const pg of got) {
        expect(pg.order).toBe(order);
        expect(pg.pfn % 2 ** order, `pfn ${pg.pfn} at order ${order}`).toBe(0);
        expect(pg.size).toBe(PAGE_SIZE << order);
        expect(pg.bytes.byteLength).toBe(PAGE_SIZE << order);
      }
      expectDisjoint(got, total);
      const s = p.stats();
      expect(s.freePages).toBe(0);
      expect(s.buddyinfo).toEqual(new Array(maxOrder + 1).fill(0));
      expectAccounting(p, total);
      for (const pg of got) p.free(pg);
      expect(p.stats().buddyinfo).toEqual(allFree(total >> maxOrder, maxOrder));
      expectAccounting(p, 0);
    }
  });

  it('exhausts a pool whose size is not a power of two', () => {
    // 1000 pages, maxOrder 4: 62 blocks of 16, then one of 8.
    const p = create({ size: 1000 * PAGE_SIZE, maxOrder: 4 });
    expect(p.stats().buddyinfo).toEqual([0, 0, 0, 1, 62]);
    const big = allocUntilFailure(p, 4);
    expect(big.length).toBe(62);
    expect(p.stats().buddyinfo).toEqual([0, 0, 0, 1, 0]);
    const eight = allocUntilFailure(p, 3);
    expect(eight.map((pg) => pg.pfn)).toEqual([992]);
    expectCode(() => p.alloc(GFP.NOWAIT, 0), 'ENOMEM');
    p.freeBulk([...big, ...eight]);
    expect(p.stats().buddyinfo).toEqual([0, 0, 0, 1, 62]);
    expectAccounting(p, 0);
  });

  it('splits a block into buddies and coalesces them back', () => {
    const p = create({ size: 16 * PAGE_SIZE, maxOrder: 4 });
    expect(p.stats().buddyinfo).toEqual([0, 0, 0, 0, 1]);

    // One page from a 16-page block leaves one free block at each lower order.
    const a = p.alloc(GFP.KERNEL, 0);
    expect(a.pfn).toBe(0);
    expect(p.stats().buddyinfo).toEqual([1, 1, 1, 1, 0]);
    expect(p._meta(0)).toMatchObject({ state: 'allocated', order: 0, owner: p.taskId });
    expect(p._meta(1)).toMatchObject({ state: 'free', order: 0 });
    expect(p._meta(2)).toMatchObject({ state: 'free', order: 1 });
    expect(p._meta(4)).toMatchObject({ state: 'free', order: 2 });
    expect(p._meta(8)).toMatchObject({ state: 'free', order: 3 });
    expect(p._meta(3).state).toBe('tail');

    // The order-0 buddy, then a block of 4 from the free order-2 block.
    const b = p.alloc(GFP.KERNEL, 0);
    expect(b.pfn).toBe(1);
    const c = p.alloc(GFP.KERNEL, 2);
    expect(c.pfn).toBe(4);
    expect(p.stats().buddyinfo).toEqual([0, 1, 0, 1, 0]);
    expectAccounting(p, 6);

    // Freeing b alone merges nothing (its buddy a is allocated)...
    p.free(b);
    expect(p.stats().buddyinfo).toEqual([1, 1, 0, 1, 0]);
    // ...freeing a merges 0+1 -> order 1, with 2 -> order 2 (stops: c is allocated).
    p.free(a);
    expect(p.stats().buddyinfo).toEqual([0, 0, 1, 1, 0]);
    expect(p._meta(0)).toMatchObject({ state: 'free', order: 2 });
    expect(p._meta(1).state).toBe('tail');
    expect(p._meta(2).state).toBe('tail');
    // Freeing c merges everything back into one block.
    p.free(c);
    expect(p.stats().buddyinfo).toEqual([0, 0, 0, 0, 1]);
    expect(p._meta(0)).toMatchObject({ state: 'free', order: 4 });
    for (let pfn = 1; pfn < 16; pfn++) expect(p._meta(pfn).state).toBe('tail');
    expectAccounting(p, 0);
  });

  it('never merges across the end of the pool', () => {
    // 24 pages: one order-4 block at 0 and one order-3 block at 16 whose
    // buddy (24..31) does not exist.
    const p = create({ size: 24 * PAGE_SIZE, maxOrder: 4 });
    expect(p.stats().buddyinfo).toEqual([0, 0, 0, 1, 1]);
    const all = allocUntilFailure(p, 0);
    expect(all.length).toBe(24);
    p.freeBulk(all);
    expect(p.stats().buddyinfo).toEqual([0, 0, 0, 1, 1]);
    expectAccounting(p, 0);
  });

  it('fragments: every other page free gives order 0 but no order 1, then coalesces fully', () => {
    const total = 64;
    const p = create({ size: total * PAGE_SIZE, maxOrder: 4 });
    const pages = allocUntilFailure(p, 0);
    expect(pages.length).toBe(total);
    const byPfn = new Map(pages.map((pg) => [pg.pfn, pg]));
    for (let pfn = 0; pfn < total; pfn += 2) p.free(byPfn.get(pfn)!);

    let s = p.stats();
    expect(s.freePages).toBe(32);
    expect(s.buddyinfo).toEqual([32, 0, 0, 0, 0]);
    const before = s.counters.allocFailFragmented;
    for (let order = 1; order <= 4; order++) {
      const err = expectCode(() => p.alloc(GFP.NOWAIT, order), 'ENOMEM');
      expect(err.message).toBe(`page allocation failure: order:${order}, mode:0x2800(GFP_NOWAIT)`);
    }
    s = p.stats();
    expect(s.counters.allocFailFragmented).toBeGreaterThan(before);
    expectAccounting(p, 32);

    // Order 0 still works, and gives back a page we just freed.
    const one = p.alloc(GFP.KERNEL, 0);
    expect(one.pfn % 2).toBe(0);
    p.free(one);

    for (let pfn = 1; pfn < total; pfn += 2) p.free(byPfn.get(pfn)!);
    expect(p.stats().buddyinfo).toEqual([0, 0, 0, 0, 4]);
    expectAccounting(p, 0);
  });

  it('allocBulk is all or none when fragmented', () => {
    const p = create({ size: 64 * PAGE_SIZE, maxOrder: 4 });
    const pages = p.allocBulk(64, GFP.KERNEL, 0);
    expectDisjoint(pages, 64);
    // Free pages 0..3 and every other page after: 4 + 30 = 34 free pages,
    // but only one order-2 block.
    p.freeBulk(pages.filter((pg) => pg.pfn < 4 || pg.pfn % 2 === 0));
    const s = p.stats();
    expect(s.freePages).toBe(34);
    expect(s.buddyinfo).toEqual([30, 0, 1, 0, 0]);
    expectCode(() => p.allocBulk(2, GFP.KERNEL, 2), 'ENOMEM');
    // Nothing was taken by the failed call.
    expect(p.stats().buddyinfo).toEqual([30, 0, 1, 0, 0]);
    expectAccounting(p, 30);
    const one = p.allocBulk(1, GFP.KERNEL, 2);
    expect(one[0]!.pfn).toBe(0);
    p.freeBulk(one);
    p.freeBulk(pages.filter((pg) => pg.pfn >= 4 && pg.pfn % 2 === 1));
    expect(p.stats().buddyinfo).toEqual([0, 0, 0, 0, 4]);
    expectAccounting(p, 0);
  });

  it('allocBulk(0) is an empty array', () => {
    const p = create({ size: 16 * PAGE_SIZE, maxOrder: 4 });
    expect(p.allocBulk(0)).toEqual([]);
    expectAccounting(p, 0);
  });

  it('keeps page contents apart and zeroes with __GFP_ZERO', () => {
    const p = create({ size: 64 * PAGE_SIZE, maxOrder: 4 });
    const pages = [p.alloc(GFP.KERNEL, 2), p.alloc(GFP.KERNEL, 0), p.alloc(GFP.KERNEL, 3), p.alloc(GFP.KERNEL, 1)];
    for (const pg of pages) pg.bytes.fill(pg.pfn + 1);
    for (const pg of pages) expect(pg.bytes.every((b) => b === pg.pfn + 1)).toBe(true);
    const pfn = pages[2]!.pfn;
    p.free(pages[2]!);
    const z = p.alloc(GFP.KERNEL | GFP.ZERO, 3);
    expect(z.pfn).toBe(pfn);
    expect(z.bytes.every((b) => b === 0)).toBe(true);
    p.freeBulk([pages[0]!, pages[1]!, pages[3]!, z]);
    expectAccounting(p, 0);
  });

  it('counts blocks and pages', () => {
    const p = create({ size: 64 * PAGE_SIZE, maxOrder: 4 });
    const a = p.alloc(GFP.KERNEL, 3);
    const b = p.allocBulk(3, GFP.KERNEL, 1);
    p.free(a);
    p.freeBulk(b);
    const c = p.stats().counters;
    expect(c.allocs).toBe(4);
    expect(c.frees).toBe(4);
    expect(c.pgalloc).toBe(8 + 6);
    expect(c.pgfree).toBe(8 + 6);
  });

  // ACCEPTANCE (issue 2): 1 GiB, every page at order 0, then 256 blocks of 4 MiB.
  it('1 GiB: full at order 0, freed, then 256 order-10 blocks', () => {
    const p = Pool.create({ size: '1GiB', watermarks: NO_WMARK });
    pools.push(p);
    const total = 262144;
    const zeros = new Array(11).fill(0);
    expect(p.totalPages).toBe(total);
    expect(p.stats().buddyinfo).toEqual(allFree(256, 10));

    const chunk = 8192;
    const all: Page[][] = [];
    for (let n = 0; n < total; n += chunk) all.push(p.allocBulk(chunk, GFP.KERNEL, 0));
    let s = p.stats();
    expect(s.freePages).toBe(0);
    expect(s.allocatedPages).toBe(total);
    expect(s.buddyinfo).toEqual(zeros);
    expectCode(() => p.alloc(GFP.NOWAIT, 0), 'ENOMEM');
    expectCode(() => p.allocBulk(1, GFP.ATOMIC, 0), 'ENOMEM');
    // Every pfn exactly once.
    const seen = new Uint8Array(total);
    for (const batch of all) for (const pg of batch) seen[pg.pfn]! += 1;
    expect(seen.every((n) => n === 1)).toBe(true);
    expectAccounting(p, total);

    for (const batch of all) p.freeBulk(batch);
    s = p.stats();
    expect(s.freePages).toBe(total);
    expect(s.buddyinfo).toEqual(allFree(256, 10));
    expectAccounting(p, 0);

    const blocks: Page[] = [];
    for (let i = 0; i < 256; i++) blocks.push(p.alloc(GFP.KERNEL, 10));
    expect(blocks.map((b) => b.pfn).sort((x, y) => x - y)).toEqual(Array.from({ length: 256 }, (_, i) => i * 1024));
    s = p.stats();
    expect(s.buddyinfo).toEqual(zeros);
    expect(s.freePages).toBe(0);
    expectCode(() => p.alloc(GFP.NOWAIT, 10), 'ENOMEM');
    expectAccounting(p, total);

    p.freeBulk(blocks);
    expect(p.stats().buddyinfo).toEqual(allFree(256, 10));
    expectAccounting(p, 0);
  });
});
