/**
 * How deep below the watermarks each caller may go (DESIGN §3), on a
 * 1000-page pool with min 400, low 500, high 600:
 *   KERNEL, NOFS, NOIO, NOWAIT        stop at min            (400 free)
 *   __GFP_HIGH that may block         half of min            (200 free)
 *   ATOMIC (HIGH, may not block)      a further quarter      (150 free)
 *   MEMALLOC                          no watermark           (0 free)
 *   NOMEMALLOC beats MEMALLOC         back to min            (400 free)
 * Masks that may block carry __GFP_NORETRY here so that they fail once they
 * reach their floor instead of waiting for memory (which on the main thread
 * is ERR_WOULD_BLOCK); NORETRY changes how long a caller tries, not how deep
 * it may go. Every case runs with and without the per-thread page cache,
 * which must not change how deep a caller goes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AllocError, formatGfp, GFP, type Page, PAGE_SIZE, Pool, type PoolOptions } from '../../../src/index.js';
import { expectAccounting, expectCode } from '../../fixtures/expect.js';

const WMARK = { min: 400, low: 500, high: 600 };
/** Fail instead of retrying or waiting, and without a warning. */
const FAIL = GFP.NORETRY | GFP.NOWARN;
const pools: Pool[] = [];
function create(options: PoolOptions = {}): Pool {
  const p = Pool.create({ size: 1000 * PAGE_SIZE, watermarks: WMARK, ...options });
  pools.push(p);
  return p;
}
afterEach(() => {
  for (const p of pools.splice(0)) p.close();
});

/** Allocates until ENOMEM; returns the pages and the error. */
function drain(pool: Pool, gfp: number, order = 0): { pages: Page[]; error: AllocError } {
  const pages: Page[] = [];
  for (;;) {
    try {
      pages.push(pool.alloc(gfp, order));
    } catch (e) {
      expect(e).toBeInstanceOf(AllocError);
      return { pages, error: e as AllocError };
    }
    if (pages.length > pool.totalPages) throw new Error('more blocks than pages');
  }
}

const cases: Array<{ label: string; gfp: number; floor: number }> = [
  { label: 'GFP_KERNEL', gfp: GFP.KERNEL | FAIL, floor: 400 },
  { label: 'GFP_NOFS', gfp: GFP.NOFS | FAIL, floor: 400 },
  { label: 'GFP_NOIO', gfp: GFP.NOIO | FAIL, floor: 400 },
  { label: 'GFP_USER', gfp: GFP.USER | FAIL, floor: 400 },
  { label: 'GFP_NOWAIT', gfp: GFP.NOWAIT, floor: 400 },
  { label: 'GFP_KERNEL|__GFP_HIGH', gfp: GFP.KERNEL | GFP.HIGH | FAIL, floor: 200 },
  { label: 'GFP_ATOMIC', gfp: GFP.ATOMIC, floor: 150 },
  { label: '__GFP_HIGH alone (cannot block)', gfp: GFP.HIGH, floor: 150 },
  { label: 'GFP_ATOMIC|__GFP_NOMEMALLOC', gfp: GFP.ATOMIC | GFP.NOMEMALLOC, floor: 200 },
  { label: 'GFP_KERNEL|__GFP_MEMALLOC', gfp: GFP.KERNEL | GFP.MEMALLOC | FAIL, floor: 0 },
  { label: '__GFP_MEMALLOC alone', gfp: GFP.MEMALLOC, floor: 0 },
  { label: 'GFP_KERNEL|__GFP_NOMEMALLOC|__GFP_MEMALLOC', gfp: GFP.KERNEL | GFP.NOMEMALLOC | GFP.MEMALLOC | FAIL, floor: 400 },
  { label: '__GFP_NOMEMALLOC|__GFP_MEMALLOC', gfp: GFP.NOMEMALLOC | GFP.MEMALLOC, floor: 400 },
];

describe.each([
  ['without a page cache', { pcp: false } as PoolOptions],
  ['with the page cache', {} as PoolOptions],
])('watermark depth by GFP mask, %s', (_name, options) => {
  it.each(cases)('$label stops with $floor pages free', ({ gfp, floor }) => {
    const p = create(options);
    const { pages, error } = drain(p, gfp);
    const s = p.stats();
    expect(s.freePages).toBe(floor);
    // Whatever the cache kept is allocated, not lost.
    expect(pages.length + s.cachedPages).toBe(1000 - floor);
    expect(error.code).toBe('ENOMEM');
    expect(error.message).toBe(`page allocation failure: order:0, mode:${formatGfp(gfp)}`);
    expect(error.order).toBe(0);
    expect(error.gfp).toBe(gfp);
    expectAccounting(p, pages.length);
    for (const pg of pages) p.free(pg);
    expectAccounting(p, 0);
  });

  it('callers go deeper one after another, and never back up', () => {
    const p = create(options);
    const held: Page[] = [];
    held.push(...drain(p, GFP.KERNEL | FAIL).pages);
    expect(p.stats().freePages).toBe(400);
    held.push(...drain(p, GFP.NOWAIT).pages);
    expect(p.stats().freePages).toBe(400);
    held.push(...drain(p, GFP.KERNEL | GFP.HIGH | FAIL).pages);
    expect(p.stats().freePages).toBe(200);
    held.push(...drain(p, GFP.ATOMIC).pages);
    expect(p.stats().freePages).toBe(150);
    for (const gfp of [
      GFP.KERNEL | FAIL,
      GFP.NOWAIT,
      GFP.KERNEL | GFP.HIGH | FAIL,
      GFP.ATOMIC,
      GFP.KERNEL | GFP.NOMEMALLOC | GFP.MEMALLOC | FAIL,
    ]) {
      expectCode(() => p.alloc(gfp), 'ENOMEM');
    }
    held.push(...drain(p, GFP.KERNEL | GFP.MEMALLOC | FAIL).pages);
    let s = p.stats();
    expect(s.freePages).toBe(0);
    expect(held.length + s.cachedPages).toBe(1000);
    expectAccounting(p, held.length);
    // One page back is not enough for anyone but MEMALLOC.
    p.freeBulk([held.pop()!]);
    expect(p.stats().freePages).toBe(1);
    expectCode(() => p.alloc(GFP.ATOMIC), 'ENOMEM');
    held.push(p.alloc(GFP.MEMALLOC));
    s = p.stats();
    expect(s.freePages).toBe(0);
    expect(s.counters.allocFailWatermark).toBeGreaterThan(0);
    p.freeBulk(held);
    expectAccounting(p, 0);
  });

  it('a plain GFP_KERNEL caller at its floor waits rather than dip below min', () => {
    const p = create(options);
    const { pages } = drain(p, GFP.KERNEL | FAIL);
    // On the main thread waiting is refused with ERR_WOULD_BLOCK; either way
    // no page below min was handed out.
    expectCode(() => p.alloc(GFP.KERNEL), ['ERR_WOULD_BLOCK', 'ENOMEM']);
    expect(p.stats().freePages).toBe(400);
    expectAccounting(p, pages.length);
    p.freeBulk(pages);
  });
});

describe('watermark depth at higher orders', () => {
  it('counts every page of the block against the mark', () => {
    const p = create({ pcp: false });
    // free - (4 - 1) must stay above 400: the last order-2 block is taken at 404.
    const { pages, error } = drain(p, GFP.KERNEL | FAIL, 2);
    expect(pages.length).toBe(150);
    expect(p.stats().freePages).toBe(400);
    expect(error.message).toBe('page allocation failure: order:2, mode:0x12cc0(GFP_KERNEL|__GFP_NOWARN|__GFP_NORETRY)');
    expect(error.order).toBe(2);
    p.freeBulk(pages);

    // ATOMIC's mark is 150; the last order-3 block is taken at 160 (160 - 7 > 150).
    const atomic = drain(p, GFP.ATOMIC, 3);
    expect(atomic.pages.length).toBe(106);
    expect(p.stats().freePages).toBe(152);
    p.freeBulk(atomic.pages);
    expectAccounting(p, 0);
  });

  it('allocBulk checks the mark for the whole batch', () => {
    const p = create({ pcp: false });
    // 600 pages can be had above min; 601 at once cannot, and nothing is taken.
    expectCode(() => p.allocBulk(601, GFP.KERNEL, 0), 'ENOMEM', /order:0, mode:0xcc0\(GFP_KERNEL\)/);
    expect(p.stats().freePages).toBe(1000);
    const got = p.allocBulk(600, GFP.KERNEL, 0);
    expect(p.stats().freePages).toBe(400);
    expectCode(() => p.allocBulk(1, GFP.KERNEL, 0), 'ENOMEM');
    const atomic = p.allocBulk(250, GFP.ATOMIC, 0);
    expect(p.stats().freePages).toBe(150);
    expectCode(() => p.allocBulk(1, GFP.ATOMIC, 0), 'ENOMEM');
    const all = p.allocBulk(150, GFP.MEMALLOC, 0);
    expect(p.stats().freePages).toBe(0);
    p.freeBulk([...got, ...atomic, ...all]);
    expectAccounting(p, 0);
  });

  it('prints NOWARN and other flags in the failure message', () => {
    const p = create({ size: 16 * PAGE_SIZE, maxOrder: 4, watermarks: { min: 0, low: 0, high: 0 }, pcp: false });
    const held = p.alloc(GFP.KERNEL, 4);
    // Costly orders fail without __GFP_RETRY_MAYFAIL.
    const message = (fn: () => unknown) => expectCode(fn, 'ENOMEM').message;
    expect(message(() => p.alloc(GFP.KERNEL | GFP.NOWARN, 4))).toBe(
      'page allocation failure: order:4, mode:0x2cc0(GFP_KERNEL|__GFP_NOWARN)',
    );
    expect(message(() => p.alloc(GFP.NOWAIT | GFP.ZERO, 0))).toBe(
      'page allocation failure: order:0, mode:0x2900(GFP_NOWAIT|__GFP_ZERO)',
    );
    expect(message(() => p.alloc(GFP.ATOMIC, 2))).toBe('page allocation failure: order:2, mode:0x820(GFP_ATOMIC)');
    p.free(held);
    expectAccounting(p, 0);
  });
});
