/**
 * Pools of any size the core accepts (up to 2^29 - 1 pages). JavaScript sees
 * the region through one ArrayBuffer per GiB (an ArrayBuffer stops at 4 GiB,
 * and pfn << 12 leaves int32 at 2 GiB); blocks never cross one. Everything a
 * caller does with a page works at the top of a 3 GiB and of a 64 GiB pool.
 * MAP_NORESERVE: the test touches only the pages it uses, so a 64 GiB pool
 * costs its metadata and little else.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { GFP, metricsOf, type Page, PAGE_SIZE, Pool, PoolCache, type PoolOptions } from '../../../src/index.js';
import { native } from '../../../src/binding/native.js';
import { attachmentOf } from '../../../src/mm/pool.js';
import { expectAccounting, expectCode } from '../../fixtures/expect.js';

const pools: Pool[] = [];
afterEach(() => {
  for (const p of pools.splice(0)) if (!p.closed) p.close();
});
function create(options: PoolOptions): Pool {
  const p = Pool.create(options);
  pools.push(p);
  return p;
}

describe.each([
  ['3 GiB', '3GiB', 3 * 262144],
  ['64 GiB', '64GiB', 64 * 262144],
])('a %s pool', (_name, size, total) => {
  it('hands out blocks at its top whose bytes, Buffers and bulk calls work', () => {
    const rss0 = process.memoryUsage().rss;
    const pool = create({ size });
    expect(pool.totalPages).toBe(total);
    // The free lists are LIFO from the top: the first order-10 block is the last one.
    const big = pool.alloc(GFP.KERNEL, 10);
    expect(big.pfn).toBe(total - 1024);
    expect(big.pfn * PAGE_SIZE).toBeGreaterThan(2 ** 31); // past where pfn << 12 overflowed
    const v = big.bytes;
    expect(v.length).toBe(4 << 20);
    v[0] = 1;
    v[v.length - 1] = 2;
    // Every view of the same memory agrees: the Buffer, and a second handle's view after a transfer.
    const buf = pool.buffer(big);
    expect([buf.length, buf[0], buf[buf.length - 1]]).toEqual([4 << 20, 1, 2]);
    const again = pool.adopt(pool.transfer(big));
    expect([again.bytes[0], again.bytes[again.bytes.length - 1]]).toEqual([1, 2]);
    // Bulk calls at the top.
    const bulk = pool.allocBulk(64, GFP.KERNEL);
    for (const [i, p] of bulk.entries()) {
      expect(p.pfn).toBeGreaterThanOrEqual(total - 2048);
      p.bytes[PAGE_SIZE - 1] = i;
    }
    expect(bulk.map((p) => p.bytes[PAGE_SIZE - 1])).toEqual(bulk.map((_, i) => i));
    pool.freeBulk(bulk);
    pool.free(again);
    expectAccounting(pool, 0);
    // Only the pages used and the metadata (8 bytes a page) became resident.
    expect(process.memoryUsage().rss - rss0).toBeLessThan(total * 8 + 64 * 2 ** 20);
  });

  it('ZERO hands out zeros after another tenant wrote the page', () => {
    const pool = create({ size, pcp: false });
    const a = pool.alloc(GFP.KERNEL, 3);
    a.bytes.fill(0xab);
    const pfn = a.pfn;
    pool.free(a);
    const b = pool.alloc(GFP.KERNEL | GFP.ZERO, 3); // LIFO: the same block
    expect(b.pfn).toBe(pfn);
    expect(b.bytes.every((x) => x === 0)).toBe(true);
    pool.free(b);
  });

  it('zeroOnFree leaves nothing behind, and poison reports a write after free', () => {
    const zeroed = create({ size, zeroOnFree: true, pcp: false });
    const z = zeroed.alloc(GFP.KERNEL, 2);
    const zv = z.bytes;
    zv.fill(0xcd);
    zeroed.free(z);
    const z2 = zeroed.alloc(GFP.KERNEL, 2);
    expect(z2.pfn).toBe(z.pfn);
    expect(z2.bytes.every((x) => x === 0)).toBe(true);
    zeroed.free(z2);

    // Poisoning is lazy: creating the pool touches none of it, a never-used
    // page (zeros) passes, a poisoned page written after its free does not.
    // (The warning itself is rate-limited across pools: count on the pool.)
    const poisoned = create({ size, poison: true, pcp: false });
    const p = poisoned.alloc(GFP.KERNEL);
    expect(poisoned.stats().vmstat.page_poison_errors).toBe(0);
    const stale = p.bytes;
    poisoned.free(p);
    stale[100] = 1; // the write after free
    const again = poisoned.alloc(GFP.KERNEL);
    expect(again.pfn).toBe(p.pfn);
    expect(poisoned.stats().vmstat.page_poison_errors).toBe(1);
    poisoned.free(again);
    const clean = poisoned.alloc(GFP.KERNEL);
    expect(poisoned.stats().vmstat.page_poison_errors).toBe(1);
    poisoned.free(clean);
  });

  it('a PoolCache keeps values in pages at the top, and metrics see the pool', () => {
    const pool = create({ size });
    const cache = new PoolCache(pool, { maxBytes: '1MiB' });
    const value = Buffer.alloc(3 * PAGE_SIZE + 17, 7);
    expect(cache.set('k', value)).toBe(true);
    expect(Buffer.compare(cache.get('k')!, value)).toBe(0);
    expect(metricsOf(pool)).toContain(`nofail_pages ${total}`);
    cache.close();
    expectAccounting(pool, 0);
  });

  it('each GiB of the region is its own ArrayBuffer; a chunk past the end is out of range', () => {
    const pool = create({ size });
    const at = attachmentOf(pool);
    const chunks = Math.ceil(total / 262144);
    expect(native.region(at.slot, chunks - 1).byteLength).toBe(2 ** 30);
    expectCode(() => native.region(at.slot, chunks), 'ERR_OUT_OF_RANGE');
  });
});

describe('a pool under 1 GiB', () => {
  it('is one ArrayBuffer of exactly its size', () => {
    const pool = create({ size: '3MiB' });
    const at = attachmentOf(pool);
    expect(native.region(at.slot, 0).byteLength).toBe(3 << 20);
    const p: Page = pool.alloc();
    expect(p.bytes.buffer).toBe(native.region(at.slot, 0));
    pool.free(p);
  });
});
