/**
 * Every error code reachable through the public API, and after each error
 * the pool still adds up (DESIGN §5): free + allocated == total, buddyinfo
 * sums to free, the native identity check passes, and no page is lost.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  BadPageError,
  DoubleFreeError,
  GFP,
  InvalidArgTypeError,
  InvalidGfpError,
  OutOfRangeError,
  Page,
  PAGE_SIZE,
  Pool,
  PoolClosedError,
  type PoolOptions,
} from '../../../src/index.js';
import { expectAccounting, expectCode } from '../../fixtures/expect.js';

const NO_WMARK = { min: 0, low: 0, high: 0 };
const pools: Pool[] = [];
function create(options: PoolOptions = {}): Pool {
  const p = Pool.create({ size: 256 * PAGE_SIZE, maxOrder: 4, watermarks: NO_WMARK, ...options });
  pools.push(p);
  return p;
}
afterEach(() => {
  for (const p of pools.splice(0)) if (!p.closed) p.close();
});

describe.each([
  ['with the page cache', {} as PoolOptions],
  ['without a page cache', { pcp: false } as PoolOptions],
])('freeing what is not a live page of this pool, %s', (_name, options) => {
  it('double free: ERR_DOUBLE_FREE at every order', () => {
    const p = create(options);
    for (const order of [0, 1, 4]) {
      const pg = p.alloc(GFP.KERNEL, order);
      p.free(pg);
      const err = expectCode(() => p.free(pg), 'ERR_DOUBLE_FREE', new RegExp(`page ${pg.pfn} .*already free`));
      expect(err).toBeInstanceOf(DoubleFreeError);
      expectAccounting(p, 0);
      // Still a double free after the block was handed out again.
      const again = p.alloc(GFP.KERNEL, order);
      expectCode(() => p.free(pg), 'ERR_DOUBLE_FREE');
      expectAccounting(p, 2 ** order);
      p.free(again);
    }
    expectAccounting(p, 0);
  });

  it('a forged {pfn, order} object: ERR_BAD_PAGE', () => {
    const p = create(options);
    const pg = p.alloc();
    for (const forged of [
      { pfn: pg.pfn, order: 0 },
      { pfn: pg.pfn, order: 0, bytes: new Uint8Array(4096), size: 4096 },
      Object.create(Page.prototype) as Page,
      Object.assign(Object.create(Page.prototype) as object, { pfn: pg.pfn, order: 0 }),
      null,
      undefined,
      pg.pfn,
    ]) {
      const err = expectCode(() => p.free(forged as Page), 'ERR_BAD_PAGE');
      expect(err).toBeInstanceOf(BadPageError);
      expectAccounting(p, 1);
    }
    // The real page was not touched.
    expect(p._meta(pg.pfn)).toMatchObject({ state: 'allocated', order: 0 });
    p.free(pg);
    expectAccounting(p, 0);
  });

  it('a structured clone of a page: ERR_BAD_PAGE', () => {
    const p = create(options);
    const pg = p.alloc(GFP.KERNEL, 2);
    const clone = structuredClone(pg) as unknown;
    expect(clone).toEqual({ pfn: pg.pfn, order: 2 });
    expectCode(() => p.free(clone as Page), 'ERR_BAD_PAGE', /forged or cloned/);
    expectCode(() => p.transfer(clone as Page), 'ERR_BAD_PAGE');
    expectAccounting(p, 4);
    p.free(pg);
    expectAccounting(p, 0);
  });

  it("a page of another pool, or of another attachment: ERR_BAD_PAGE", () => {
    const p = create(options);
    const other = create(options);
    const q = Pool.attach(p.handle);
    pools.push(q);
    const a = p.alloc();
    const b = other.alloc();
    const c = q.alloc();
    expectCode(() => p.free(b), 'ERR_BAD_PAGE', /another pool/);
    expectCode(() => other.free(a), 'ERR_BAD_PAGE');
    expectCode(() => p.free(c), 'ERR_BAD_PAGE');
    expectCode(() => q.free(a), 'ERR_BAD_PAGE');
    expectCode(() => p.freeBulk([a, c]), 'ERR_BAD_PAGE');
    expectAccounting(p, 2);
    expectAccounting(other, 1);
    p.free(a);
    q.free(c);
    other.free(b);
    expectAccounting(p, 0);
    expectAccounting(other, 0);
  });

  it('a transferred page cannot be used, freed or transferred again', () => {
    const p = create(options);
    const pg = p.alloc(GFP.KERNEL, 1);
    const d = p.transfer(pg);
    expect(d).toEqual({ pool: p.handle.id, pfn: pg.pfn, order: 1, gen: expect.any(Number) });
    expect(Object.isFrozen(d)).toBe(true);
    expectCode(() => p.free(pg), 'ERR_BAD_PAGE', /transferred/);
    expectCode(() => p.transfer(pg), 'ERR_BAD_PAGE');
    expectCode(() => pg.bytes, 'ERR_BAD_PAGE', /transferred/);
    expectCode(() => p.freeBulk([pg]), 'ERR_BAD_PAGE');
    expectAccounting(p, 2);
    const back = p.adopt(d);
    expect(back.pfn).toBe(pg.pfn);
    p.free(back);
    expectAccounting(p, 0);
  });

  it('a freed page has no bytes', () => {
    const p = create(options);
    const pg = p.alloc();
    const view = pg.bytes;
    expect(view.byteLength).toBe(4096);
    p.free(pg);
    expectCode(() => pg.bytes, 'ERR_BAD_PAGE', /freed/);
  });

  it('freeBulk with the same page twice frees nothing', () => {
    const p = create(options);
    const a = p.alloc();
    const b = p.alloc(GFP.KERNEL, 2);
    const before = p.stats();
    expectCode(() => p.freeBulk([a, b, a]), 'ERR_DOUBLE_FREE');
    expect(p.stats().freePages).toBe(before.freePages);
    expect(p.stats().counters.frees).toBe(before.counters.frees);
    expectAccounting(p, 5);
    // Both pages are still live and can be freed once.
    p.freeBulk([a, b]);
    expectAccounting(p, 0);
    expectCode(() => p.freeBulk([b]), 'ERR_DOUBLE_FREE');
  });

  it('freeBulk with a forged entry in the middle frees nothing', () => {
    const p = create(options);
    const pages = p.allocBulk(4, GFP.KERNEL, 1);
    expectCode(() => p.freeBulk([pages[0]!, { pfn: pages[1]!.pfn, order: 1 } as Page, pages[2]!]), 'ERR_BAD_PAGE');
    expectAccounting(p, 8);
    p.freeBulk(pages);
    expectAccounting(p, 0);
  });
});

describe('stale and repeated adoption', () => {
  // Regression test (fixed): native/sync/pool.cc Pool::setOwner runs checkAllocatedLocked()
  // before the expected-owner check, and that reports a free head as
  // kDoubleFree: adopt() of a descriptor whose page was freed since throws
  // ERR_DOUBLE_FREE ("adopt: the block is already free (double free)")
  // when the block is a free head (page cache off), ERR_BAD_PAGE otherwise.
  // Nothing was freed twice; the descriptor is stale. (With the page cache
  // on, the freed page is still allocated to the adopter and fails the
  // transit-owner check: ERR_BAD_PAGE, and no aliasing.)
  it.each([
    ['without a page cache', { pcp: false } as PoolOptions],
    ['with the page cache', {} as PoolOptions],
  ])('adopting a descriptor whose page was freed since: ERR_BAD_PAGE (%s)', (_name, options) => {
    const p = create(options);
    const q = Pool.attach(p.handle);
    pools.push(q);
    const pg = q.alloc();
    const d = q.transfer(pg);
    const mine = p.adopt(d);
    p.free(mine);
    expectCode(() => p.adopt(d), 'ERR_BAD_PAGE');
    // Nothing may alias the freed page now.
    const next = p.alloc();
    expectAccounting(p, 1);
    p.free(next);
  });

  // Two live handles to one block must not exist: after the first adopt the
  // block no longer belongs to the transit task.
  it('adopting the same descriptor twice: ERR_BAD_PAGE', () => {
    const p = create({ pcp: false });
    const q = Pool.attach(p.handle);
    pools.push(q);
    const d = q.transfer(q.alloc(GFP.KERNEL, 1));
    const first = p.adopt(d);
    expectCode(() => p.adopt(d), 'ERR_BAD_PAGE');
    p.free(first);
    expectAccounting(p, 0);
  });

  it('a descriptor that was freed and the block reused: ERR_BAD_PAGE', () => {
    const p = create({ pcp: false });
    const pg = p.alloc(GFP.KERNEL, 2);
    const d = p.transfer(pg);
    const mine = p.adopt(d);
    p.free(mine);
    const reused = p.alloc(GFP.KERNEL, 2);
    expect(reused.pfn).toBe(pg.pfn);
    expectCode(() => p.adopt(d), 'ERR_BAD_PAGE');
    // A smaller block at the same pfn is not the descriptor's either.
    p.free(reused);
    const small = p.alloc(GFP.KERNEL, 0);
    expect(small.pfn).toBe(pg.pfn);
    expectCode(() => p.adopt(d), 'ERR_BAD_PAGE');
    p.free(small);
    expectAccounting(p, 0);
  });

  it('bad descriptors', () => {
    const p = create();
    const other = create();
    const pg = p.alloc(GFP.KERNEL, 1);
    const d = p.transfer(pg);
    expectCode(() => p.adopt(null as never), 'ERR_INVALID_ARG_TYPE');
    expectCode(() => p.adopt('descriptor' as never), 'ERR_INVALID_ARG_TYPE');
    expectCode(() => other.adopt(d), 'ERR_BAD_PAGE', /another pool/);
    expectCode(() => p.adopt({ ...d, gen: (d.gen + 1) % 2 ** 20 }), 'ERR_BAD_PAGE');
    expectCode(() => p.adopt({ ...d, order: 0 }), 'ERR_BAD_PAGE');
    expectCode(() => p.adopt({ ...d, pfn: d.pfn + 1, order: 0 }), 'ERR_BAD_PAGE');
    expectCode(() => p.adopt({ ...d, pfn: 256 }), 'ERR_OUT_OF_RANGE');
    expectCode(() => p.adopt({ ...d, pfn: -1 }), 'ERR_OUT_OF_RANGE');
    expectCode(() => p.adopt({ ...d, order: 5 }), 'ERR_OUT_OF_RANGE');
    expectCode(() => p.adopt({ ...d, gen: 2 ** 20 }), 'ERR_OUT_OF_RANGE');
    expectCode(() => p.adopt({ ...d, pfn: '0' } as never), 'ERR_INVALID_ARG_TYPE');
    expectCode(() => p.adopt({ ...d, gen: NaN }), 'ERR_OUT_OF_RANGE');
    expectAccounting(p, 2);
    p.free(p.adopt(d));
    expectAccounting(p, 0);
  });
});

describe('use after close', () => {
  it('every call throws ERR_POOL_CLOSED, and old views are empty', () => {
    const p = create();
    const q = Pool.attach(p.handle);
    pools.push(q);
    const pg = p.alloc(GFP.KERNEL, 2);
    const view = pg.bytes;
    view.fill(1);
    const small = p.alloc();
    const d = p.transfer(p.alloc());
    // Everything this thread held comes back, live and cached; not the page in transit.
    const st = p.stats();
    expect(st.threadPages).toBe(4 + 1);
    const held = st.threadPages + st.threadCachedPages;
    expect(p.close()).toBe(held);
    expect(p.closed).toBe(true);
    expect(view.byteLength).toBe(0);

    expect(expectCode(() => p.alloc(), 'ERR_POOL_CLOSED')).toBeInstanceOf(PoolClosedError);
    expectCode(() => p.alloc(GFP.KERNEL, 3), 'ERR_POOL_CLOSED');
    expectCode(() => p.allocBulk(1), 'ERR_POOL_CLOSED');
    expectCode(() => p.free(pg), 'ERR_POOL_CLOSED');
    expectCode(() => p.free(small), 'ERR_POOL_CLOSED');
    expectCode(() => p.freeBulk([pg]), 'ERR_POOL_CLOSED');
    expectCode(() => p.transfer(pg), 'ERR_POOL_CLOSED');
    expectCode(() => p.adopt(d), 'ERR_POOL_CLOSED');
    expectCode(() => p.stats(), 'ERR_POOL_CLOSED');
    expectCode(() => p.checkInvariants(), 'ERR_POOL_CLOSED');
    expectCode(() => p._meta(0), 'ERR_POOL_CLOSED');
    expectCode(() => pg.bytes, 'ERR_POOL_CLOSED');
    expect(p.close()).toBe(0);

    // The pages came back, except the one in transit, which another
    // attachment can still adopt; the pool lives on there.
    expect(q.stats().threads).toBe(1);
    expectAccounting(q, 1);
    q.free(q.adopt(d));
    expectAccounting(q, 0);
    expect(q.stats().freePages + q.stats().cachedPages).toBe(256);
  });

  it('the last close destroys the pool: its handle no longer attaches', () => {
    const p = create();
    const h = p.handle;
    const q = Pool.attach(h);
    p.close();
    expect(Pool.attach(h).close()).toBe(0);
    q.close();
    expectCode(() => Pool.attach(h), 'ERR_POOL_CLOSED');
  });

  it('Symbol.dispose closes', () => {
    const p = Pool.create({ size: '1MiB' });
    const held = p.alloc();
    p[Symbol.dispose]();
    expect(p.closed).toBe(true);
    expectCode(() => held.bytes, 'ERR_POOL_CLOSED');
  });
});

describe('bad arguments', () => {
  it('bad orders', () => {
    const p = create();
    for (const order of [5, -1, 0.5, NaN, Infinity, 2 ** 32]) {
      expect(expectCode(() => p.alloc(GFP.KERNEL, order), 'ERR_OUT_OF_RANGE', /^order .*0 to 4/)).toBeInstanceOf(
        OutOfRangeError,
      );
      expectCode(() => p.allocBulk(1, GFP.KERNEL, order), 'ERR_OUT_OF_RANGE', /^order /);
    }
    for (const order of ['1', null, {}, 1n]) {
      expect(expectCode(() => p.alloc(GFP.KERNEL, order as never), 'ERR_INVALID_ARG_TYPE')).toBeInstanceOf(
        InvalidArgTypeError,
      );
      expectCode(() => p.allocBulk(1, GFP.KERNEL, order as never), 'ERR_INVALID_ARG_TYPE');
    }
    expectAccounting(p, 0);
  });

  it('bad counts', () => {
    const p = create();
    for (const n of [-1, 1.5, NaN, 257, Infinity]) expectCode(() => p.allocBulk(n), 'ERR_OUT_OF_RANGE', /^n /);
    for (const n of ['1', undefined, null]) expectCode(() => p.allocBulk(n as never), 'ERR_INVALID_ARG_TYPE', /^n /);
    expectCode(() => p.freeBulk('pages' as never), 'ERR_INVALID_ARG_TYPE');
    expectCode(() => p.freeBulk(null as never), 'ERR_INVALID_ARG_TYPE');
    expectAccounting(p, 0);
  });

  it('bad GFP masks', () => {
    const p = create();
    for (const gfp of [0x1, 0x200, GFP.KERNEL | 0x1000, GFP.KERNEL | GFP.NORETRY | GFP.NOFAIL, -1, 0.5, 2 ** 32]) {
      expect(expectCode(() => p.alloc(gfp), 'ERR_INVALID_GFP')).toBeInstanceOf(InvalidGfpError);
      expectCode(() => p.alloc(gfp, 2), 'ERR_INVALID_GFP');
      expectCode(() => p.allocBulk(2, gfp), 'ERR_INVALID_GFP');
    }
    for (const gfp of ['GFP_KERNEL', null, {}]) {
      expectCode(() => p.alloc(gfp as never), 'ERR_INVALID_ARG_TYPE');
      expectCode(() => p.allocBulk(1, gfp as never), 'ERR_INVALID_ARG_TYPE');
    }
    expectAccounting(p, 0);
  });

  it('pages are not constructible', () => {
    const Ctor = Page as unknown as new (...args: unknown[]) => Page;
    expect(() => new Ctor(Symbol('nofail.page'), {}, 0, 0, 0)).toThrow(TypeError);
  });

  it('bad handles', () => {
    const p = create();
    const other = create();
    expectCode(() => Pool.attach(null as never), 'ERR_INVALID_ARG_TYPE');
    expectCode(() => Pool.attach({ id: p.handle.id, nonce: p.handle.nonce } as never), 'ERR_INVALID_ARG_TYPE');
    expectCode(() => Pool.attach({ ...p.handle, id: String(p.handle.id) } as never), 'ERR_INVALID_ARG_TYPE');
    expectCode(() => Pool.attach({ ...p.handle, nonce: (p.handle.nonce + 1) >>> 0 }), 'ERR_POOL_CLOSED');
    expectCode(() => Pool.attach({ ...p.handle, id: 999999 }), 'ERR_POOL_CLOSED');
    expectCode(() => Pool.attach({ ...p.handle, control: other.handle.control }), 'ERR_BAD_PAGE');
    expectCode(() => Pool.attach({ ...p.handle, control: new SharedArrayBuffer(64) }), 'ERR_BAD_PAGE');
    expectCode(
      () => Pool.attach({ ...p.handle, control: new SharedArrayBuffer(p.handle.control.byteLength) }),
      'ERR_BAD_PAGE',
    );
    expect(p.stats().threads).toBe(1);
    expectAccounting(p, 0);
  });
});
