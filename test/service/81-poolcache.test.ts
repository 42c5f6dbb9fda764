/**
 * PoolCache: values in pool pages, LRU by lru-cache, given back to reclaim
 * through its shrinker — on this thread and when another thread's direct
 * reclaim asks for it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { GFP, PAGE_SIZE, type Page, Pool, PoolCache } from '../../src/index.js';
import { expectAccounting, expectCode } from '../fixtures/expect.js';
import { takeAll } from '../fixtures/pool.js';
import { TestWorker } from '../fixtures/workers.js';

let pool: Pool;
afterEach(() => pool?.close());

const value = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255));

describe('PoolCache', () => {
  it('stores values in pool pages and returns them intact, copy or pinned', () => {
    pool = Pool.create({ size: '1MiB' });
    const cache = new PoolCache(pool, { maxBytes: '256KiB' });
    const v = value(3 * PAGE_SIZE + 100, 1);
    expect(cache.set('a', v)).toBe(true);
    expect(cache.set('b', 'short string')).toBe(true);
    expect(cache.set('c', [Buffer.from('one '), Buffer.from('value '), Buffer.from('in pieces')])).toBe(true);
    expect(cache.set('empty', Buffer.alloc(0))).toBe(true);
    expect(cache.stats().pages).toBe(4 + 1 + 1 + 0);
    expect(pool.stats().threadPages).toBeGreaterThanOrEqual(6);
    expect(cache.get('a')!.equals(v)).toBe(true);
    expect(cache.get('b')!.toString()).toBe('short string');
    expect(cache.get('c')!.toString()).toBe('one value in pieces');
    expect(cache.get('empty')!.length).toBe(0);
    expect(cache.get('nope')).toBeUndefined();
    const ref = cache.acquire('a')!;
    expect(ref.size).toBe(v.length);
    // One view per run of adjacent pages, the last one trimmed: together, the value.
    expect(ref.buffers.reduce((n, b) => n + b.length, 0)).toBe(v.length);
    expect(ref.buffers.length).toBeLessThanOrEqual(4);
    expect(Buffer.concat(ref.buffers).equals(v)).toBe(true);
    ref.release();
    ref.release(); // idempotent
    const s = cache.stats();
    expect([s.hits, s.misses, s.sets, s.setFailures]).toEqual([5, 1, 4, 0]);
    cache.close();
    expectAccounting(pool, 0);
  });

  it('keeps a small JSON meta beside each entry: a frozen copy, returned with getEntry and acquire', () => {
    pool = Pool.create({ size: '1MiB' });
    const cache = new PoolCache<string, { sha: string; type?: string; parts?: number[] }>(pool, { maxBytes: '256KiB' });
    const meta = { sha: 'ab12', type: 'text/plain', parts: [1, 2] };
    expect(cache.set('a', 'value', meta)).toBe(true);
    meta.sha = 'changed later'; // the cache kept its own copy
    meta.parts.push(3);
    const e = cache.getEntry('a')!;
    expect(e.value.toString()).toBe('value');
    expect(e.meta).toEqual({ sha: 'ab12', type: 'text/plain', parts: [1, 2] });
    expect(Object.isFrozen(e.meta) && Object.isFrozen(e.meta!.parts)).toBe(true);
    const ref = cache.acquire('a')!;
    expect(ref.meta).toBe(e.meta); // one immutable value for every reader
    ref.release();
    expect(cache.set('b', 'no meta')).toBe(true);
    const plain = cache.acquire('b')!;
    expect(plain.meta).toBeUndefined();
    plain.release();
    expect(cache.getEntry('nope')).toBeUndefined();
    // Not JSON, or not small: refused before anything is stored.
    expectCode(() => cache.set('c', 'v', 'text' as never), 'ERR_INVALID_ARG_TYPE');
    expectCode(() => cache.set('c', 'v', { n: Number.NaN } as never), 'ERR_INVALID_ARG_VALUE');
    expectCode(() => cache.set('c', 'v', { d: new Date() } as never), 'ERR_INVALID_ARG_VALUE');
    expectCode(() => cache.set('c', 'v', { f: () => 1 } as never), 'ERR_INVALID_ARG_VALUE');
    expectCode(() => cache.set('c', 'v', { big: 'x'.repeat(2000) } as never), 'ERR_OUT_OF_RANGE');
    expectCode(() => cache.set('c', 'v', { quoted: '"'.repeat(600) } as never), 'ERR_OUT_OF_RANGE');
    const deep: Record<string, unknown> = {};
    let at = deep;
    for (let i = 0; i < 10; i++) at = at.next = {} as Record<string, unknown>;
    expectCode(() => cache.set('c', 'v', deep as never), 'ERR_OUT_OF_RANGE');
    expect(cache.has('c')).toBe(false);
    cache.close();
    expectAccounting(pool, 0);
  });

  it('replacing a value frees the old pages; delete and clear free them too', () => {
    pool = Pool.create({ size: '1MiB' });
    const cache = new PoolCache(pool, { maxBytes: '256KiB' });
    cache.set('k', value(2 * PAGE_SIZE, 1));
    cache.set('k', value(PAGE_SIZE, 2));
    expect(cache.stats().pages).toBe(1);
    expect(cache.get('k')!.equals(value(PAGE_SIZE, 2))).toBe(true);
    expect(cache.delete('k')).toBe(true);
    expect(cache.has('k')).toBe(false);
    cache.set('x', 'x');
    cache.set('y', 'y');
    cache.clear();
    expect(cache.stats().pages).toBe(0);
    expectAccounting(pool, 0);
    cache.close();
  });

  it('evicts the least recently used entries at maxBytes and counts them', () => {
    pool = Pool.create({ size: '1MiB' });
    const cache = new PoolCache(pool, { maxBytes: 4 * PAGE_SIZE });
    for (const k of ['a', 'b', 'c', 'd']) cache.set(k, value(PAGE_SIZE, k.charCodeAt(0)));
    cache.get('a'); // a is now the most recent
    cache.set('e', value(PAGE_SIZE, 9));
    expect(cache.has('b')).toBe(false);
    expect(cache.has('a')).toBe(true);
    expect(cache.stats()).toMatchObject({ entries: 4, pages: 4, evictions: 1, shrunk: 0 });
    expect(cache.set('huge', value(5 * PAGE_SIZE, 0))).toBe(false);
    expect(cache.stats().setFailures).toBe(1);
    cache.close();
    expectAccounting(pool, 0);
  });

  it('gives its coldest pages back to direct reclaim — its own set()s and other allocations — never failing them', () => {
    pool = Pool.create({ size: '512KiB' });
    const cache = new PoolCache(pool, { maxBytes: '512KiB' });
    // Twice the pool: once the pool is full, each set() reclaims the
    // coldest entries (the cache's own bound is never reached).
    const n = 256;
    for (let i = 0; i < n; i++) expect(cache.set(`k${i}`, value(PAGE_SIZE, i))).toBe(true);
    let s = cache.stats();
    expect(s.setFailures).toBe(0);
    expect(s.evictions).toBe(0);
    expect(s.shrunk).toBeGreaterThan(0);
    expect(cache.has('k0')).toBe(false); // the coldest went first
    expect(cache.has(`k${n - 1}`)).toBe(true);
    const cached = s.pages;
    expect(cached).toBeGreaterThan(64);
    // Another allocation that may reclaim takes the cache's pages too.
    const held: Page[] = takeAll(pool, GFP.KERNEL | GFP.NORETRY | GFP.NOWARN);
    s = cache.stats();
    expect(s.pages).toBeLessThan(cached / 2);
    // What is left is intact.
    for (let i = 0; i < n; i++) {
      const v = cache.get(`k${i}`);
      if (v) expect(v.equals(value(PAGE_SIZE, i))).toBe(true);
    }
    // With the pool full of others' pages, set() fails (no OOM, no throw).
    expect(cache.set('late', value(PAGE_SIZE, 1))).toBe(cache.stats().pages > 0);
    // NOWAIT cannot reclaim: the cache is not touched.
    const before = cache.stats().shrunk;
    takeAll(pool, GFP.NOWAIT).forEach((p) => held.push(p));
    expect(cache.stats().shrunk).toBe(before);
    for (const p of held) pool.free(p);
    cache.close();
    expectAccounting(pool, 0);
  });

  it('kswapd evicts its coldest entries to keep free pages between low and high', async () => {
    pool = Pool.create({ size: 1024 * PAGE_SIZE, watermarks: { min: 32, low: 64, high: 96 }, pcp: false });
    const cache = new PoolCache(pool, { maxBytes: 1024 * PAGE_SIZE, gfp: GFP.NOWAIT });
    // NOWAIT never reclaims itself, it only wakes kswapd: every page the
    // cache gives back here is kswapd's doing.
    let failed = 0;
    const trace: number[] = [];
    for (let i = 0; i < 3000; i++) {
      if (!cache.set(`k${i}`, value(PAGE_SIZE, i))) failed++;
      if (i % 8 === 7) {
        trace.push(pool.stats().freePages);
        await new Promise((r) => setImmediate(r));
      }
    }
    const s = pool.stats();
    expect(s.vmstat.pgsteal_kswapd).toBeGreaterThan(0);
    expect(s.vmstat.pgsteal_direct).toBe(0);
    expect(cache.stats().shrunkPages).toBe(s.vmstat.pgsteal_kswapd);
    expect(cache.has('k0')).toBe(false);
    expect(cache.has('k2999')).toBe(true);
    const steady = trace.slice(trace.length / 2);
    expect(Math.min(...steady)).toBeGreaterThanOrEqual(32);
    expect(Math.max(...steady)).toBeLessThanOrEqual(96 + 32);
    expect(failed).toBeLessThan(3000 / 10);
    cache.close();
    expectAccounting(pool, 0);
  });

  it('reclaim passes over pinned entries; one replaced or deleted while pinned keeps its pages until release()', () => {
    pool = Pool.create({ size: '512KiB', poison: true });
    const cache = new PoolCache(pool, { maxBytes: '512KiB' });
    const v = value(2 * PAGE_SIZE, 5);
    cache.set('pinned', v);
    cache.set('cold', value(PAGE_SIZE, 6));
    const ref = cache.acquire('pinned')!; // now the most recent; pin it
    cache.get('cold'); // and make the pinned one the coldest again
    // Reclaim takes everything it can, but not the pinned entry.
    const held = takeAll(pool, GFP.KERNEL | GFP.NORETRY | GFP.NOWARN);
    expect(cache.has('cold')).toBe(false);
    expect(cache.has('pinned')).toBe(true);
    expect(cache.stats().pages).toBe(2);
    for (const p of held.splice(0)) pool.free(p);
    // Replaced while pinned: the new value is there, the old pages stay the reader's.
    expect(cache.set('pinned', value(PAGE_SIZE, 7))).toBe(true);
    expect(cache.stats().pinnedEvictedPages).toBe(2);
    expect(cache.get('pinned')!.equals(value(PAGE_SIZE, 7))).toBe(true);
    // The evicted pages were not handed out (poison would show it): the view is still the old value.
    takeAll(pool, GFP.NOWAIT).forEach((p) => held.push(p));
    expect(Buffer.concat(ref.buffers).equals(v)).toBe(true);
    ref.release();
    expect(cache.stats().pinnedEvictedPages).toBe(0);
    for (const p of held) pool.free(p);
    // Deleted while pinned: the same.
    const ref2 = cache.acquire('pinned')!;
    cache.delete('pinned');
    expect(cache.stats()).toMatchObject({ entries: 0, pinnedEvictedPages: 1 });
    ref2.release();
    cache.close();
    expectAccounting(pool, 0);
  });

  it('a failed set() leaves no stale value behind', () => {
    pool = Pool.create({ size: '512KiB' });
    const cache = new PoolCache(pool, { maxBytes: 4 * PAGE_SIZE });
    cache.set('k', 'old');
    expect(cache.set('k', value(5 * PAGE_SIZE, 1))).toBe(false); // larger than the cache
    expect(cache.has('k')).toBe(false);
    cache.set('k', 'old');
    const held = takeAll(pool, GFP.NOWAIT);
    for (const p of held.splice(0, 1)) pool.free(p);
    const nowait = new PoolCache(pool, { maxBytes: '64KiB', gfp: GFP.NOWAIT });
    nowait.set('k', 'old');
    expect(nowait.set('k', value(3 * PAGE_SIZE, 1))).toBe(false); // no memory
    expect(nowait.has('k')).toBe(false);
    for (const p of held) pool.free(p);
    cache.close();
    nowait.close();
    expectAccounting(pool, 0);
  });

  it('validates its options and refuses use after close()', () => {
    pool = Pool.create({ size: '512KiB' });
    expectCode(() => new PoolCache(pool, { maxBytes: 100 }), 'ERR_OUT_OF_RANGE');
    expectCode(() => new PoolCache(pool, { maxBytes: '1MiB', maxEntries: 0 }), 'ERR_OUT_OF_RANGE');
    expectCode(() => new PoolCache(pool, { maxBytes: '1MiB', gfp: 1 << 30 }), 'ERR_INVALID_GFP');
    expectCode(() => new PoolCache(pool, null as never), 'ERR_INVALID_ARG_TYPE');
    const cache = new PoolCache(pool, { maxBytes: '64KiB' });
    expectCode(() => cache.set('k', 42 as never), 'ERR_INVALID_ARG_TYPE');
    expectCode(() => cache.set('k', [Buffer.from('a'), 'b'] as never), 'ERR_INVALID_ARG_TYPE');
    expectCode(() => cache.adopt('k', Buffer.from('a') as never), 'ERR_INVALID_ARG_TYPE');
    cache.set('k', 'v');
    cache.close();
    cache.close();
    expectCode(() => cache.get('k'), 'ERR_POOL_CLOSED');
    expectCode(() => cache.has('k'), 'ERR_POOL_CLOSED');
    expectCode(() => cache.delete('k'), 'ERR_POOL_CLOSED');
    expectCode(() => cache.acquire('k'), 'ERR_POOL_CLOSED');
    expectCode(() => cache.set('k', 'v'), 'ERR_POOL_CLOSED');
    expectAccounting(pool, 0);
  });

  it('a worker’s direct reclaim takes the main thread’s cache pages through its shrinker', async () => {
    pool = Pool.create({ size: '1MiB' });
    const cache = new PoolCache(pool, { maxBytes: '1MiB' });
    for (let i = 0; i < 256; i++) cache.set(`k${i}`, value(PAGE_SIZE, i)); // the whole pool, near enough
    const wanted = 128;
    expect(pool.stats().freePages).toBeLessThan(wanted);
    const w = new TestWorker('./alloc-worker.mjs', { handle: pool.handle, scenario: 'alloc-loop', count: wanted });
    let got = 0;
    for (;;) {
      const m = await w.next(20_000); // awaiting: the main thread serves the worker's reclaim requests
      if (m.done) break;
      expect(m.ok, `allocation ${m.i} failed: ${m.code}`).toBe(true);
      got++;
    }
    expect(await w.exit).toBe(0);
    expect(got).toBe(wanted);
    expect(cache.stats().shrunkPages).toBeGreaterThan(0);
    expect(pool.stats().vmstat.remote_reclaim_requests).toBeGreaterThan(0);
    cache.close();
    expectAccounting(pool, 0);
  });
});
