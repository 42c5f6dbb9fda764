/**
 * The per-thread page cache (pcp) seen from outside: cached pages are held
 * by no caller, go back on close, never exceed `high`, are given back by the
 * slow path, and never make an allocation fail that would succeed without
 * it. Blocks of order 1 to 3 have lists of their own, drained in turn with
 * order 0's; larger ones never enter. With the default sizing, high adapts: it grows when a thread frees
 * bursts of pages and shrinks when free memory runs below HIGH.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { GFP, type Page, PAGE_SIZE, Pool, type PoolOptions } from '../../../src/index.js';
import { expectAccounting, expectCode } from '../../fixtures/expect.js';

const NO_WMARK = { min: 0, low: 0, high: 0 };
const pools: Pool[] = [];
function create(options: PoolOptions): Pool {
  const p = Pool.create({ watermarks: NO_WMARK, ...options });
  pools.push(p);
  return p;
}
afterEach(() => {
  for (const p of pools.splice(0)) if (!p.closed) p.close();
});

describe('per-thread page cache', () => {
  it('refills in one batch; cached pages are owned by this thread but allocated to no caller', () => {
    const p = create({ size: '1MiB', pcp: { batch: 8, high: 32 } });
    const a = p.alloc();
    let s = p.stats();
    expect(s.cachedPages).toBe(7);
    expect(s.threadCachedPages).toBe(7);
    expect(s.allocatedPages).toBe(1);
    expect(s.threadPages).toBe(1);
    expect(s.freePages).toBe(256 - 8);
    expect(p._meta(a.pfn)).toMatchObject({ state: 'allocated', order: 0, owner: p.taskId });
    expectAccounting(p, 1);

    p.free(a);
    s = p.stats();
    expect(s.cachedPages).toBe(8);
    expect(s.freePages).toBe(256 - 8);
    expectAccounting(p, 0);
  });

  it('never holds more than high, draining a batch at a time', () => {
    const p = create({ size: '1MiB', pcp: { batch: 8, high: 32 } });
    const pages: Page[] = [];
    for (let i = 0; i < 100; i++) pages.push(p.alloc());
    for (const pg of pages) {
      p.free(pg);
      expect(p.stats().cachedPages).toBeLessThanOrEqual(32);
    }
    const s = p.stats();
    expect(s.cachedPages).toBeGreaterThan(0);
    expect(s.allocatedPages).toBe(0);
    expectAccounting(p, 0);
  });

  it('hands out distinct pages, and a freed page is not handed out while live elsewhere', () => {
    const p = create({ size: '1MiB', pcp: { batch: 8, high: 32 } });
    const live = new Set<number>();
    const pages: Page[] = [];
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 10; i++) {
        const pg = p.alloc();
        expect(live.has(pg.pfn), `pfn ${pg.pfn} handed out twice`).toBe(false);
        live.add(pg.pfn);
        pages.push(pg);
      }
      for (let i = 0; i < 7; i++) {
        const pg = pages.splice((round * 7 + i) % pages.length, 1)[0]!;
        live.delete(pg.pfn);
        p.free(pg);
      }
    }
    expectAccounting(p, pages.length);
    p.freeBulk(pages);
    expectAccounting(p, 0);
  });

  it('close() returns cached pages with the rest', () => {
    const p = create({ size: '1MiB', pcp: { batch: 8, high: 32 } });
    const a = p.alloc();
    const b = p.alloc(GFP.KERNEL, 3); // an order-3 refill: two blocks, one cached
    p.free(p.alloc());
    const st = p.stats();
    expect([st.threadPages, st.threadCachedPages]).toEqual([1 + 8, 7 + 8]);
    const held = st.threadPages + st.threadCachedPages;
    const q = Pool.attach(p.handle);
    pools.push(q);
    expect(p.close()).toBe(held);
    const s = q.stats();
    expect(s.freePages).toBe(256);
    expect(s.cachedByTask[p.taskId]).toBeUndefined();
    expect(a.pfn).not.toBe(b.pfn);
    expectAccounting(q, 0);
  });

  it('the slow path gives cached pages back rather than fail', () => {
    const p = create({ size: 64 * PAGE_SIZE, maxOrder: 4, pcp: { batch: 63, high: 252 } });
    const one = p.alloc();
    // Every other page now sits in the cache.
    expect(p.stats().freePages).toBe(1);
    const big = p.alloc(GFP.KERNEL, 4);
    expect(big.order).toBe(4);
    expect(p.stats().cachedPages).toBe(0);
    expectAccounting(p, 17);
    // And the cache is not needed to reach order 0 either.
    const rest: Page[] = [];
    for (let i = 0; i < 64 - 17; i++) rest.push(p.alloc());
    expectCode(() => p.alloc(GFP.NOWAIT), 'ENOMEM');
    expectAccounting(p, 64);
    p.freeBulk([one, big, ...rest]);
    expectAccounting(p, 0);
  });

  // Regression test (fixed): src/mm/pcp.ts Pcp.refill asks native.allocBulk for `batch` (63) pages
  // even when the pool has fewer pages; native rejects n > nrPages with
  // ERR_OUT_OF_RANGE, so every order-0 alloc() of a pool under 63 pages throws.
  it('a pool smaller than one batch still hands out all its pages', () => {
    const p = create({ size: 16 * PAGE_SIZE, maxOrder: 4 });
    const pages: Page[] = [];
    for (let i = 0; i < 16; i++) pages.push(p.alloc());
    expect(new Set(pages.map((pg) => pg.pfn)).size).toBe(16);
    expectCode(() => p.alloc(GFP.NOWAIT), 'ENOMEM');
    p.freeBulk(pages);
    expectAccounting(p, 0);
  });

  it('pcp: false frees straight to the buddy lists', () => {
    const p = create({ size: 16 * PAGE_SIZE, maxOrder: 4, pcp: false });
    const a = p.alloc();
    expect(p.stats().allocatedPages).toBe(1);
    p.free(a);
    expect(p.stats().buddyinfo).toEqual([0, 0, 0, 0, 1]);
    expectAccounting(p, 0);
  });

  it('a thread that frees bursts grows its high (adaptive sizing), up to an eighth of the pool', () => {
    const p = create({ size: '64MiB' }); // 16384 pages: high 252 at first, at most 2048
    const burst = (n: number) => {
      const pages: Page[] = [];
      for (let i = 0; i < n; i++) pages.push(p.alloc());
      for (const pg of pages) p.free(pg);
    };
    burst(1000);
    // Frees overflowed 252 and high doubled instead of draining: the whole
    // burst is cached, with what the last refill left over.
    expect(p.stats().threadCachedPages).toBeGreaterThanOrEqual(1000);
    expectAccounting(p, 0);
    // The next burst of the same size comes from the cache: no page of the zone is touched.
    const before = p.stats().counters.allocs;
    burst(1000);
    expect(p.stats().counters.allocs).toBe(before);
    // Never past an eighth of the pool.
    burst(4000);
    expect(p.stats().threadCachedPages).toBeLessThanOrEqual(2048 + 1);
    expect(p.stats().threadCachedPages).toBeGreaterThan(1000);
    expectAccounting(p, 0);
  });

  it('a refill that finds free memory below HIGH halves an adaptive high', () => {
    const p = create({ size: '64MiB' });
    const pages: Page[] = [];
    for (let i = 0; i < 1000; i++) pages.push(p.alloc());
    for (const pg of pages.splice(0)) p.free(pg);
    const cached = p.stats().threadCachedPages;
    expect(cached).toBeGreaterThanOrEqual(1000); // high grew past 1000, to 2016
    // Memory is now "short": free pages are below the HIGH watermark.
    p.setWatermarks({ min: 0, low: 0, high: 16384 });
    // Empty the cache, and one more: that refill halves high (to 1008), and
    // frees past it drain instead of growing it again.
    for (let i = 0; i <= cached; i++) pages.push(p.alloc());
    for (const pg of pages.splice(0)) p.free(pg);
    expect(p.stats().threadCachedPages).toBeLessThanOrEqual(1008 + 1);
    expectAccounting(p, 0);
  });

  it('explicit sizes stay as given, and the ring drains its coldest pages across its wrap point', () => {
    const p = create({ size: '1MiB', pcp: { batch: 4, high: 8 } });
    const live = new Map<number, Page>();
    // Push and pop around the ring many times: every page handed out is distinct and live pages are never reissued.
    for (let round = 0; round < 200; round++) {
      const n = 1 + (round % 11);
      const got: Page[] = [];
      for (let i = 0; i < n; i++) {
        const pg = p.alloc();
        expect(live.has(pg.pfn)).toBe(false);
        live.set(pg.pfn, pg);
        got.push(pg);
      }
      for (const pg of got.slice(0, n - 1)) {
        live.delete(pg.pfn);
        p.free(pg);
        expect(p.stats().threadCachedPages).toBeLessThanOrEqual(8 + 1);
      }
    }
    expectAccounting(p, live.size);
    p.freeBulk([...live.values()]);
    expectAccounting(p, 0);
  });

  it('blocks of order 1 to 3 come from the cache and go back to it; order 4 goes to the zone', () => {
    const p = create({ size: '1MiB', pcp: { batch: 8, high: 32 } });
    for (const order of [1, 2, 3]) {
      const before = p.stats().threadCachedPages; // the lists of lower orders
      const a = p.alloc(GFP.KERNEL, order);
      expect(a.order).toBe(order);
      expect(a.bytes.length).toBe(PAGE_SIZE << order);
      // The refill took max(batch >> order, 2) blocks; the rest wait in the cache.
      const blocks = Math.max(8 >> order, 2);
      expect(p.stats().threadCachedPages - before).toBe((blocks - 1) << order);
      a.bytes[0] = 7;
      p.free(a);
      expect(p.stats().threadCachedPages - before).toBe(blocks << order);
      // The block just freed is the one handed out next, with no zone call.
      const allocs = p.stats().counters.allocs;
      const b = p.alloc(GFP.KERNEL, order);
      expect([b.pfn, b.order, p.stats().counters.allocs]).toEqual([a.pfn, order, allocs]);
      expect(() => a.bytes).toThrow(); // the old handle stays dead
      expect(p._meta(b.pfn)).toMatchObject({ state: 'allocated', order, owner: p.taskId });
      p.free(b);
      expectAccounting(p, 0);
    }
    const cached = p.stats().threadCachedPages;
    const big = p.alloc(GFP.KERNEL, 4);
    p.free(big);
    expect(p.stats().threadCachedPages).toBe(cached);
    expect(p._meta(big.pfn).state).toBe('free');
    expectAccounting(p, 0);
  });

  it('a drain takes every order in turn, and the cache passes high by less than one block', () => {
    const p = create({ size: '4MiB', pcp: { batch: 8, high: 32 } });
    const held: Page[] = [];
    for (let i = 0; i < 20; i++) for (const order of [0, 1, 2, 3]) held.push(p.alloc(GFP.KERNEL, order));
    let x = 12345;
    while (held.length > 0) {
      x = (x * 1103515245 + 12345) >>> 0;
      p.free(held.splice(x % held.length, 1)[0]!);
      expect(p.stats().threadCachedPages).toBeLessThan(32 + 8);
    }
    // The last frees, of every order, stay cached: no one order took the cache.
    const s = p.stats();
    expect(s.threadCachedPages).toBeGreaterThan(0);
    expectAccounting(p, 0);
    const q = Pool.attach(p.handle);
    pools.push(q);
    p.close();
    expect(q.stats().freePages).toBe(1024);
  });

  it('a cached block does not keep its buddy from merging: the slow path drains it', () => {
    const p = create({ size: 32 * PAGE_SIZE, maxOrder: 4, pcp: { batch: 16, high: 32 } });
    const a = p.alloc(GFP.KERNEL, 3); // the refill takes both order-3 halves of one order-4 block
    p.free(a);
    expect(p.stats().threadCachedPages).toBe(16);
    const first = p.alloc(GFP.KERNEL, 4);
    const second = p.alloc(GFP.KERNEL, 4); // only there once the cached halves merge
    expect(p.stats().threadCachedPages).toBe(0);
    expectAccounting(p, 32);
    p.freeBulk([first, second]);
    expectAccounting(p, 0);
  });

  it('an order-3 batch that does not fit above LOW still allocates the one block', () => {
    const p = create({ size: 32 * PAGE_SIZE, maxOrder: 4, watermarks: { min: 0, low: 20, high: 20 } });
    // The two-block refill would leave 16 free, below LOW; one block leaves 24.
    const a = p.alloc(GFP.KERNEL, 3);
    expect(a.order).toBe(3);
    const s = p.stats();
    expect([s.threadPages, s.threadCachedPages, s.freePages]).toEqual([8, 0, 24]);
    p.free(a);
    expectAccounting(p, 0);
  });
});
