/**
 * What one tenant can see of another's data: ZERO, zeroOnFree, poisoning,
 * and views that never reach outside their page.
 */
import { describe, expect, it } from 'vitest';
import { GFP, onWarning, Pool, type Warning } from '../../src/index.js';

describe('security options', () => {
  it('a page view never reaches outside its page', () => {
    const pool = Pool.create({ size: '1MiB' });
    const a = pool.alloc(GFP.KERNEL, 1);
    expect(a.bytes.byteLength).toBe(8192);
    expect(a.bytes.byteOffset).toBe(a.pfn * 4096);
    expect(() => new Uint8Array(a.bytes.buffer, 0, 1)).not.toThrow(); // the region buffer is this thread's own
    a.bytes[8192] = 7; // out of bounds writes are dropped by the typed array
    expect(a.bytes[8192]).toBeUndefined();
    pool.free(a);
  });

  it('GFP.ZERO hands out zeroed memory', () => {
    const pool = Pool.create({ size: '1MiB', pcp: false });
    const a = pool.alloc();
    a.bytes.fill(0xee);
    pool.free(a);
    const b = pool.alloc(GFP.KERNEL | GFP.ZERO);
    expect(b.pfn).toBe(a.pfn);
    expect(b.bytes.every((x) => x === 0)).toBe(true);
  });

  it('zeroOnFree: the next owner never sees the data of the last, through the page cache too', () => {
    const pool = Pool.create({ size: '1MiB', zeroOnFree: true });
    const a = pool.alloc();
    a.bytes.fill(0x5a);
    const view = a.bytes;
    pool.free(a);
    expect(view.every((x) => x === 0)).toBe(true);
    const bulk = pool.allocBulk(8);
    for (const p of bulk) p.bytes.fill(1);
    pool.freeBulk(bulk);
    for (const p of pool.allocBulk(8)) expect(p.bytes.every((x) => x === 0)).toBe(true);
  });

  it('poison: a write after free is reported on the next allocation of the page', async () => {
    const pool = Pool.create({ size: '1MiB', poison: true, pcp: false });
    const seen: Warning[] = [];
    const off = onWarning((w) => w.kind === 'use-after-free' && seen.push(w));
    const a = pool.alloc();
    const stale = a.bytes;
    pool.free(a);
    expect(stale[0]).toBe(0x6b);
    stale[123] = 0; // use after free
    const b = pool.alloc();
    expect(b.pfn).toBe(a.pfn);
    expect(pool.stats().vmstat.page_poison_errors).toBe(1);
    await new Promise((r) => setTimeout(r, 20));
    off();
    expect(seen[0]?.message).toMatch(/page poison check failed: pfn \d+ order 0 .*offset 123/);
    // A clean free-and-reallocate reports nothing.
    pool.free(b);
    pool.alloc();
    expect(pool.stats().vmstat.page_poison_errors).toBe(1);
  });

  it('zeroOnFree and poison are exclusive', () => {
    expect(() => Pool.create({ size: '1MiB', zeroOnFree: true, poison: true })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });
});
