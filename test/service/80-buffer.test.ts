/**
 * pool.buffer() / allocBuffer(): Node Buffers over pool pages, no copy.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { GFP, orderForSize, PAGE_SIZE, Pool, PoolBuffer } from '../../src/index.js';
import { expectAccounting, expectCode } from '../fixtures/expect.js';

let pool: Pool;
afterEach(() => pool?.close());

describe('orderForSize', () => {
  it('is the smallest order whose block holds the bytes', () => {
    expect([1, 4096, 4097, 8192, 8193, 16384, 16385, 4 << 20].map(orderForSize)).toEqual([0, 0, 1, 1, 2, 2, 3, 10]);
  });
});

describe('pool.buffer(page)', () => {
  it('is a Buffer over the page: writes through either show in the other', () => {
    pool = Pool.create({ size: '1MiB' });
    const page = pool.alloc(GFP.KERNEL, 1);
    const buf = pool.buffer(page);
    expect(Buffer.isBuffer(buf)).toBe(true);
    expect(buf.length).toBe(2 * PAGE_SIZE);
    buf.write('written through the Buffer', 100);
    expect(Buffer.from(page.bytes.subarray(100, 126)).toString()).toBe('written through the Buffer');
    page.bytes[8000] = 0x5a;
    expect(buf[8000]).toBe(0x5a);
    // Same memory, not a copy.
    expect(buf.buffer).toBe(page.bytes.buffer);
    expect(buf.byteOffset).toBe(page.bytes.byteOffset);
    expect(pool.buffer(page, 10).length).toBe(10);
    pool.free(page);
    expectAccounting(pool, 0);
  });

  it('refuses freed, foreign and forged pages and bad lengths with typed errors', () => {
    pool = Pool.create({ size: '1MiB' });
    const other = Pool.create({ size: '1MiB' });
    try {
      const page = pool.alloc();
      expectCode(() => pool.buffer(page, -1), 'ERR_OUT_OF_RANGE');
      expectCode(() => pool.buffer(page, PAGE_SIZE + 1), 'ERR_OUT_OF_RANGE');
      expectCode(() => pool.buffer(page, 1.5), 'ERR_OUT_OF_RANGE');
      expectCode(() => pool.buffer(page, '10' as unknown as number), 'ERR_INVALID_ARG_TYPE');
      expectCode(() => other.buffer(page), 'ERR_BAD_PAGE');
      expectCode(() => pool.buffer({ pfn: 0, order: 0 } as never), 'ERR_BAD_PAGE');
      pool.free(page);
      expectCode(() => pool.buffer(page), 'ERR_DOUBLE_FREE');
      expectAccounting(pool, 0);
    } finally {
      other.close();
    }
  });
});

describe('pool.allocBuffer(size)', () => {
  it('picks the order for the size; buf is exactly size bytes of the page', () => {
    pool = Pool.create({ size: '1MiB' });
    const b = pool.allocBuffer(5000);
    expect(b).toBeInstanceOf(PoolBuffer);
    expect(b.page.order).toBe(1);
    expect(b.pages).toBe(2);
    expect(b.size).toBe(5000);
    expect(b.buf.length).toBe(5000);
    b.buf.fill(7);
    expect(b.page.bytes[4999]).toBe(7);
    expect(pool.stats().threadPages).toBeGreaterThanOrEqual(2);
    b.free();
    expectCode(() => b.free(), 'ERR_DOUBLE_FREE');
    expectAccounting(pool, 0);
  });

  it('frees through `using`', () => {
    pool = Pool.create({ size: '1MiB' });
    {
      using b = pool.allocBuffer(PAGE_SIZE * 3, GFP.KERNEL | GFP.ZERO);
      expect(b.page.order).toBe(2);
      expect(b.buf.every((x) => x === 0)).toBe(true);
    }
    expectAccounting(pool, 0);
  });

  it('validates the size against the largest block', () => {
    pool = Pool.create({ size: '1MiB', maxOrder: 4 });
    expectCode(() => pool.allocBuffer(0), 'ERR_OUT_OF_RANGE');
    expectCode(() => pool.allocBuffer((PAGE_SIZE << 4) + 1), 'ERR_OUT_OF_RANGE', /order 4/);
    expectCode(() => pool.allocBuffer(NaN), 'ERR_OUT_OF_RANGE');
    expectCode(() => pool.allocBuffer('4k' as unknown as number), 'ERR_INVALID_ARG_TYPE');
    expectCode(() => pool.allocBuffer(10, 1 << 30), 'ERR_INVALID_GFP');
    expect(pool.allocBuffer(PAGE_SIZE << 4).page.order).toBe(4);
    expectAccounting(pool, 16);
  });

  it('fails like alloc() when the pool is out of memory, and leaves nothing behind', async () => {
    pool = Pool.create({ size: '256KiB' });
    const held: PoolBuffer[] = [];
    expectCode(() => {
      for (;;) held.push(pool.allocBuffer(PAGE_SIZE, GFP.NOWAIT));
    }, 'ENOMEM');
    await expect(pool.allocBufferAsync(PAGE_SIZE, GFP.KERNEL, { timeoutMs: 20 })).rejects.toMatchObject({ name: 'TimeoutError' });
    for (const b of held) b.free();
    const b = await pool.allocBufferAsync(3 * PAGE_SIZE);
    expect(b.page.order).toBe(2);
    b.free();
    expectAccounting(pool, 0);
  });
});
