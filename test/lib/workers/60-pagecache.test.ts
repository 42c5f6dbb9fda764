/**
 * The page cache over a real file (issue 3): clean pages are dropped under
 * any mask, dirty pages only when reclaim may do I/O (written back first),
 * index nodes only when it may enter the filesystem; data survives eviction;
 * reclaim entered from inside the cache's own allocation never evicts what
 * is being filled or pinned; and another thread's reclaim reaches the cache
 * through its owner's event loop, with the requester's mask.
 */
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type AllocError, GFP, GFP_SCOPE, type Page, PAGE_SIZE, Pool, type Shrinker, withGfpScope } from '../../../src/index.js';
import { NODE_SLOTS, PageCache, type PageCacheOptions, type PinnedBlock } from '../../../src/lib/pagecache/pagecache.js';
import { expectAccounting, expectCode } from '../../fixtures/expect.js';

const dir = mkdtempSync(join(tmpdir(), 'nofail-pagecache-'));
let files = 0;
const newFile = () => join(dir, `file-${files++}`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const pools: Pool[] = [];
const caches: PageCache[] = [];
const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
  for (const c of caches.splice(0)) if (!c.closed) c.close();
  for (const p of pools.splice(0)) if (!p.closed) p.close();
});

/** 256 pages, min/low/high 8/16/24, no per-thread page cache: every page is accounted where it is. */
function smallPool(): Pool {
  const p = Pool.create({ size: 256 * PAGE_SIZE, pcp: false, watermarks: { min: 8, low: 16, high: 24 } });
  pools.push(p);
  return p;
}

function openCache(pool: Pool, file: string, options: Omit<PageCacheOptions, 'file'> = {}): PageCache {
  const c = new PageCache(pool, { file, ...options });
  caches.push(c);
  return c;
}

/** Distinct, recognisable contents for (block, version). */
function pattern(block: number, version: number): Uint8Array {
  const b = new Uint8Array(PAGE_SIZE);
  for (let i = 0; i < PAGE_SIZE; i++) b[i] = (block * 31 + version * 101 + i) & 0xff;
  return b;
}

/** Block `block` of the file as it is on disk now (zeros past its end). */
function onDisk(file: string, block: number): Uint8Array {
  const out = new Uint8Array(PAGE_SIZE);
  out.set(readFileSync(file).subarray(block * PAGE_SIZE, (block + 1) * PAGE_SIZE));
  return out;
}

function writeFile(file: string, blocks: Iterable<number>, version: number): void {
  const fd = openSync(file, 'w');
  for (const b of blocks) writeSync(fd, pattern(b, version), 0, PAGE_SIZE, b * PAGE_SIZE);
  closeSync(fd);
}

/** Allocates with `gfp` until it fails with ENOMEM; returns the pages it got. */
function exhaust(pool: Pool, gfp: number): Page[] {
  gfp |= GFP.NOWARN;  // the failure is the point; no "page allocation failure" warning
  const held: Page[] = [];
  for (;;) {
    try {
      held.push(pool.alloc(gfp));
    } catch (e) {
      expect((e as AllocError).code).toBe('ENOMEM');
      return held;
    }
  }
}

const equal = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;

describe('reclaim of the page cache by mask', () => {
  it('NOIO drops clean pages but never writes dirty ones back; KERNEL writes them back and reuses them', () => {
    const file = newFile();
    const blocks = [...Array(200).keys()];
    writeFile(file, blocks, 1);
    const pool = smallPool();
    const hooks = { reclaim: 0, sync: 0, drop: 0 };
    const cache = openCache(pool, file, {
      onWriteback: (pages, reason) => void (hooks[reason] += pages),
      onDrop: (pages) => void (hooks.drop += pages),
    });
    for (const b of blocks) expect(equal(cache.read(b), pattern(b, 1))).toBe(true);
    for (let b = 0; b < 40; b++) cache.write(b, pattern(b, 2));
    expect(cache.stats).toMatchObject({ cached: 200, dirty: 40, clean: 160, nodes: 1, misses: 200, hits: 40 });
    expect(pool.stats().freePages).toBe(256 - 201);

    // NOIO, and NORETRY so that it fails instead of waiting once reclaim stalls.
    const held = exhaust(pool, GFP.NOIO | GFP.NORETRY);
    let s = cache.stats;
    expect(s.clean).toBe(0);
    expect(s.dropped).toBe(160);
    expect(s.dirty).toBe(40);
    expect(s.writebacks).toBe(0);
    expect(s.scans.dirty).toBe(0);
    expect(s.scans.index).toBe(0);
    expect(held.length).toBeGreaterThanOrEqual(160);
    expect(pool.stats().freePages).toBeLessThanOrEqual(8);
    expect(pool.stats().vmstat.shrinker_deferred).toBeGreaterThan(0);
    for (let b = 0; b < 40; b++) expect(equal(onDisk(file, b), pattern(b, 1)), `block ${b} on disk`).toBe(true);
    cache.checkInvariants();
    expectAccounting(pool, held.length + 40 + 1);

    // Nothing else is reclaimable: the page KERNEL gets is one a dirty page was written back from.
    held.push(pool.alloc(GFP.KERNEL));
    s = cache.stats;
    expect(s.dirty).toBe(0);
    expect(s.writebacks).toBe(40);
    expect(s.reclaimWritebacks).toBe(40);
    expect(s.dropped).toBe(200);
    expect(hooks).toEqual({ reclaim: 40, sync: 0, drop: 200 });
    for (let b = 0; b < 40; b++) expect(equal(onDisk(file, b), pattern(b, 2)), `block ${b} on disk`).toBe(true);
    for (let b = 40; b < 200; b++) expect(equal(onDisk(file, b), pattern(b, 1)), `block ${b} on disk`).toBe(true);
    cache.checkInvariants();
    expectAccounting(pool, held.length + 1);

    // And the data comes back from the file.
    pool.freeBulk(held);
    for (let b = 0; b < 200; b += 7) expect(equal(cache.read(b), pattern(b, b < 40 ? 2 : 1))).toBe(true);
    expect(cache.stats.refaults).toBe(Math.ceil(200 / 7));
  });

  it('NOFS never runs the index shrinker; KERNEL does', () => {
    const file = newFile();
    const extents = [0, 3, 7];
    const blocks = extents.flatMap((x) => [...Array(40).keys()].map((i) => x * NODE_SLOTS + i));
    writeFile(file, blocks, 1);
    const pool = smallPool();
    const cache = openCache(pool, file);
    for (const b of blocks) cache.read(b);
    expect(cache.stats).toMatchObject({ cached: 120, nodes: 3 });

    const held = exhaust(pool, GFP.NOFS | GFP.NORETRY);
    let s = cache.stats;
    expect(s.cached).toBe(0);
    expect(s.scans.clean).toBeGreaterThan(0);
    expect(s.scans.index).toBe(0);
    expect(s.nodes).toBe(3);  // holding only shadow entries now

    held.push(pool.alloc(GFP.KERNEL));
    s = cache.stats;
    expect(s.scans.index).toBeGreaterThan(0);
    expect(s.nodesFreed).toBe(3);
    expect(s.nodes).toBe(0);
    cache.checkInvariants();
    expectAccounting(pool, held.length);
    pool.freeBulk(held);
  });

  it('a NOFS scope strips FS from the cache\'s own allocations, and the index shrinker stays out', () => {
    const file = newFile();
    const pool = smallPool();
    const cache = openCache(pool, file);
    // Reads past the end of the file: zero pages, spread over many extents.
    const held: Page[] = [];
    withGfpScope(GFP_SCOPE.NOFS, () => {
      for (let b = 0; b < 100; b++) cache.read(b * NODE_SLOTS);
      held.push(...exhaust(pool, GFP.KERNEL | GFP.NORETRY));
    });
    const s = cache.stats;
    expect(s.scans.index).toBe(0);
    expect(s.nodes).toBe(100);
    expect(s.cached).toBe(0);
    expect(pool.stats().freePages).toBeLessThanOrEqual(8);
    pool.freeBulk(held);
  });

  it('the index shrinker frees shadow-only nodes first, then idle clean extents, with a second chance; never busy or dirty ones', () => {
    const pool = smallPool();
    // Catch the shrinkers as they are registered, to call scan() directly.
    const shrinkers = new Map<string, Shrinker>();
    const register = pool.registerShrinker.bind(pool);
    pool.registerShrinker = (sh: Shrinker) => (shrinkers.set(sh.name, sh), register(sh));
    const cache = openCache(pool, newFile());
    expect([...shrinkers.keys()]).toEqual(['pagecache-clean', 'pagecache-dirty', 'pagecache-index']);
    expect([...shrinkers.values()].map((sh) => sh.needs)).toEqual(['none', 'io', 'fs']);
    const index = shrinkers.get('pagecache-index')!;
    const ctx = { gfp: GFP.KERNEL, nrToScan: 1, priority: 0, kswapd: false };
    const extent = (x: number, n: number) => [...Array(n).keys()].map((i) => x * NODE_SLOTS + i);

    for (const b of extent(0, 5)) cache.read(b);
    expect(shrinkers.get('pagecache-clean')!.scan(5, ctx)).toBe(5);  // extent 0: shadows only
    for (const b of extent(1, 10)) cache.read(b);  // A
    for (const b of extent(2, 10)) cache.read(b);  // B
    for (const b of extent(3, 10)) cache.read(b);  // D, with a dirty block
    cache.write(3 * NODE_SLOTS, Uint8Array.of(1));
    const pinned = cache.pin(4 * NODE_SLOTS);  // P, busy
    expect(index.count()).toBe(1 + 11 + 11);

    expect(index.scan(1, ctx)).toBe(1);  // the shadow-only node
    expect(cache.stats.nodes).toBe(4);
    expect(index.scan(1, ctx)).toBe(0);  // A and B were referenced when filled: second chance
    cache.read(NODE_SLOTS + 3);  // A referenced again
    expect(index.scan(1, ctx)).toBe(11);  // B goes, page and node
    expect(extent(2, 10).some((b) => cache.has(b))).toBe(false);
    expect(extent(1, 10).every((b) => cache.has(b))).toBe(true);
    expect(index.scan(1000, ctx)).toBe(11);  // A: its second chance was used by the last scan
    expect(index.scan(1000, ctx)).toBe(0);  // D is dirty, P is pinned
    expect(cache.stats).toMatchObject({ nodes: 2, nodesFreed: 3, dropped: 5 + 20 });
    cache.checkInvariants();
    pinned.release();
    expect(index.count()).toBe(2);  // P is idle now
    cache.checkInvariants();
    expectAccounting(pool, cache.stats.cached + cache.stats.nodes);
  });
});

describe('data through eviction', () => {
  it('writes round-trip through eviction and writeback: partial, full, sparse, and the logical size', () => {
    const file = newFile();
    const pool = smallPool();
    const cache = openCache(pool, file);
    expect(cache.size).toBe(0);
    const model = new Map<number, Uint8Array>();
    const get = (b: number) => model.get(b) ?? new Uint8Array(PAGE_SIZE);
    const write = (b: number, data: Uint8Array, off: number) => {
      const m = get(b);
      m.set(data, off);
      model.set(b, m);
      cache.write(b, data, off);
    };
    for (let b = 0; b < 150; b++) {
      if (b % 3 === 0) write(b, pattern(b, 3), 0);
      else if (b % 3 === 1) write(b, pattern(b, 4).subarray(0, 50), 100);
    }
    write(300, Uint8Array.of(1, 2, 3), 10);  // past a hole: size ends inside block 300
    expect(cache.size).toBe(300 * PAGE_SIZE + 13);
    expect(cache.stats.dirty).toBe(101);

    // Pressure that may do I/O evicts everything that is not pinned.
    const held = exhaust(pool, GFP.KERNEL | GFP.NORETRY);
    expect(cache.stats.cached).toBeLessThan(20);
    expect(cache.stats.writebacks).toBeGreaterThan(80);
    pool.freeBulk(held);
    cache.checkInvariants();
    cache.sync();
    expect(cache.stats.dirty).toBe(0);

    const disk = readFileSync(file);
    expect(disk.length).toBe(300 * PAGE_SIZE + 13);
    for (let b = 0; b <= 300; b++) {
      expect(equal(onDisk(file, b), get(b)), `block ${b} on disk`).toBe(true);
      expect(equal(cache.read(b), get(b)), `block ${b} read back`).toBe(true);
    }

    // A partial write to an evicted block reads it from the file first.
    exhaust(pool, GFP.NOIO | GFP.NORETRY).forEach((p) => pool.free(p));
    expect(cache.has(4)).toBe(false);
    write(4, Uint8Array.of(9, 9, 9), 4000);
    expect(equal(cache.read(4), get(4))).toBe(true);
    expect(cache.writeback(4)).toBe(1);
    expect(cache.writeback(4)).toBe(0);
    expect(equal(onDisk(file, 4), get(4))).toBe(true);

    // Reopened, the file is what the model says.
    cache.close();
    const again = openCache(pool, file);
    expect(again.size).toBe(300 * PAGE_SIZE + 13);
    for (let b = 0; b <= 300; b += 5) expect(equal(again.read(b), get(b))).toBe(true);
    again.close();
    expectAccounting(pool, 0);
  });

  it('creates a missing file, validates arguments, and closes cleanly', () => {
    const file = newFile();
    const pool = smallPool();
    const cache = openCache(pool, file);
    expect(readFileSync(file).length).toBe(0);
    expect(cache.read(3).every((x) => x === 0)).toBe(true);
    expectCode(() => cache.read(-1), 'ERR_OUT_OF_RANGE');
    expectCode(() => cache.read(1.5), 'ERR_OUT_OF_RANGE');
    expectCode(() => cache.read('1' as never), 'ERR_INVALID_ARG_TYPE');
    expectCode(() => cache.read(0, 1 << 30), 'ERR_INVALID_GFP');
    expectCode(() => cache.write(0, new Uint8Array(10), 4090), 'ERR_OUT_OF_RANGE');
    expectCode(() => cache.write(0, [1, 2] as never), 'ERR_INVALID_ARG_TYPE');
    expectCode(() => cache.unpin(3), 'ERR_BAD_PAGE');
    expectCode(() => new PageCache(pool, { file: '' }), 'ERR_INVALID_ARG_TYPE');
    cache.write(1, Uint8Array.of(7), 0);
    const p = cache.pin(1);
    cache.close();
    p.release();  // void after close
    expect(readFileSync(file)).toEqual(Buffer.concat([Buffer.alloc(PAGE_SIZE), Buffer.of(7)]));
    expectCode(() => cache.read(0), 'ERR_POOL_CLOSED');
    expectAccounting(pool, 0);
  });
});

describe('I/O errors and pools with a per-thread page cache', () => {
  it.skipIf(!existsSync('/dev/full'))('a failed writeback keeps the page dirty and cached, and sync() and close() report it', () => {
    const pool = smallPool();
    const cache = openCache(pool, '/dev/full');  // every write fails with ENOSPC
    cache.write(0, pattern(0, 1));
    cache.write(1, pattern(1, 1));
    const held = exhaust(pool, GFP.KERNEL | GFP.NORETRY);
    const s = cache.stats;
    expect(s.scans.dirty).toBeGreaterThan(0);
    expect(s.writebackErrors).toBeGreaterThan(0);
    expect(s).toMatchObject({ dirty: 2, writebacks: 0, reclaimWritebacks: 0 });
    expect(equal(cache.read(1), pattern(1, 1))).toBe(true);
    cache.checkInvariants();
    pool.freeBulk(held);
    expectCode(() => cache.sync(), 'ENOSPC');
    expectCode(() => cache.close(), 'ENOSPC');
    expect(cache.closed).toBe(true);
    expectAccounting(pool, 0);
  });

  it('works over a pool with the per-thread page cache on (the default)', () => {
    const file = newFile();
    const pool = Pool.create({ size: 256 * PAGE_SIZE, watermarks: { min: 8, low: 16, high: 24 } });
    pools.push(pool);
    const cache = openCache(pool, file);
    for (let b = 0; b < 1000; b++) cache.write(b, pattern(b, 5).subarray(0, 64), b % 4000);
    for (let b = 0; b < 1000; b++) expect(equal(cache.read(b).subarray(b % 4000, (b % 4000) + 64), pattern(b, 5).subarray(0, 64))).toBe(true);
    expect(cache.stats.dropped).toBeGreaterThan(700);
    cache.checkInvariants();
    cache.close();
    for (let b = 0; b < 1000; b += 37) expect(equal(onDisk(file, b).subarray(b % 4000, (b % 4000) + 64), pattern(b, 5).subarray(0, 64))).toBe(true);
    expectAccounting(pool, 0);
  });
});

describe('re-entrancy: reclaim entered from the cache\'s own allocation', () => {
  it('misses on a full pool reclaim other blocks of the same cache, never the one being filled or a pinned one', () => {
    const file = newFile();
    writeFile(file, [...Array(700).keys()], 1);
    const pool = smallPool();
    const cache = openCache(pool, file);
    const pins = [0, 1, 2, 3, 4].map((b) => cache.pin(b));
    cache.write(0, pattern(0, 9));  // pinned and dirty: never written back by reclaim
    const model = new Map<number, Uint8Array>();
    for (let b = 10; b < 700; b++) {
      const v = cache.read(b);  // misses from ~b = 250 on reclaim inside pool.alloc
      expect(cache.has(b)).toBe(true);
      expect(equal(v, pattern(b, 1)), `block ${b}`).toBe(true);
      if (b % 10 === 0) {
        // A partial write that misses: read-modify-write under pressure.
        const nb = b + 1000;
        cache.write(nb, Uint8Array.of(b & 0xff, 1, 2), 7);
        const m = new Uint8Array(PAGE_SIZE);
        m.set([b & 0xff, 1, 2], 7);
        model.set(nb, m);
        expect(equal(cache.read(nb), m)).toBe(true);
      }
      if (b % 50 === 0) cache.checkInvariants();
    }
    const s = cache.stats;
    expect(s.dropped).toBeGreaterThan(400);
    expect(s.pinned).toBe(5);
    for (const p of pins) expect(cache.has(p.block)).toBe(true);
    expect(equal(pins[0]!.bytes, pattern(0, 9))).toBe(true);
    for (const p of pins.slice(1)) expect(equal(p.bytes, pattern(p.block, 1))).toBe(true);
    expect(equal(onDisk(file, 0), pattern(0, 1))).toBe(true);  // never written back while pinned
    for (const p of pins) p.release();
    cache.sync();
    expect(equal(onDisk(file, 0), pattern(0, 9))).toBe(true);
    for (const [b, m] of model) expect(equal(onDisk(file, b), m), `block ${b}`).toBe(true);
    cache.checkInvariants();
  });

  it('the index shrinker, run from inside a miss, never frees the node the miss is filling', () => {
    const file = newFile();
    const pool = smallPool();
    const cache = openCache(pool, file);
    // Extent 0 first (oldest in the index), then four one-block extents.
    for (let b = 0; b < 10; b++) cache.read(b);
    for (const x of [2, 3, 4, 5]) cache.read(x * NODE_SLOTS);
    // Pin extent-1 blocks until NOFS reclaim runs dry: every clean page of
    // extents 0 and 2..5 is dropped, their nodes keep only shadow entries.
    const pins: PinnedBlock[] = [];
    for (;;) {
      try {
        pins.push(cache.pin(NODE_SLOTS + pins.length, GFP.NOFS | GFP.NORETRY | GFP.NOWARN));
      } catch (e) {
        expect((e as AllocError).code).toBe('ENOMEM');
        break;
      }
    }
    expect(cache.stats).toMatchObject({ cached: pins.length, pinned: pins.length, nodes: 6, nodesFreed: 0 });
    expect(cache.has(0)).toBe(false);

    // A KERNEL miss in extent 0: the data page can only come from the index
    // shrinker, whose oldest candidate is extent 0 itself — held busy.
    expect(cache.read(3).every((x) => x === 0)).toBe(true);
    const s = cache.stats;
    expect(s.scans.index).toBeGreaterThan(0);
    expect(s.nodesFreed).toBe(4);
    expect(s.nodes).toBe(2);
    expect(s.refaults).toBe(1);
    expect(cache.has(3)).toBe(true);
    cache.checkInvariants();
    for (const p of pins) p.release();
    expectAccounting(pool, cache.stats.cached + cache.stats.nodes);
  });
});

describe('another thread\'s reclaim', () => {
  const next = (w: Worker) =>
    new Promise<any>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });

  it('reaches a worker\'s page cache with the requester\'s mask: NOIO drops clean pages, KERNEL writes back', async () => {
    const file = newFile();
    writeFile(file, [...Array(150).keys()], 1);
    const pool = smallPool();
    const writes = [...Array(30).keys()].map((b) => [b, pattern(b, 2)] as const);
    const w = new Worker(new URL('../../fixtures/pagecache-worker.mjs', import.meta.url), {
      workerData: { handle: pool.handle, file, blocks: 150, writes },
    });
    workers.push(w);
    let r = await next(w);
    expect(r.stats).toMatchObject({ cached: 150, dirty: 30 });

    // Without KSWAPD_RECLAIM, so the worker's kswapd (which reclaims with
    // GFP_KERNEL) stays asleep and only this thread's mask is at work.
    // A worker that answers after REMOTE_TIMEOUT_MS (a loaded machine) makes
    // one attempt fail early; go on until the worker has nothing clean left.
    const noio = GFP.DIRECT_RECLAIM | GFP.NORETRY | GFP.NOWARN;
    const held: Page[] = [];
    for (;;) {
      try {
        held.push(await pool.allocAsync(noio));
      } catch (e) {
        expect((e as AllocError).code).toBe('ENOMEM');
        w.postMessage('stats');
        r = await next(w);
        if (r.stats.clean === 0) break;
      }
    }
    expect(pool.stats().vmstat.remote_reclaim_requests).toBeGreaterThan(0);
    expect(r.stats).toMatchObject({ clean: 0, dirty: 30, writebacks: 0, dropped: 120 });
    expect(r.stats.scans.dirty).toBe(0);
    for (let b = 0; b < 30; b++) expect(equal(onDisk(file, b), pattern(b, 1))).toBe(true);

    held.push(await pool.allocAsync(GFP.KERNEL & ~GFP.KSWAPD_RECLAIM));
    w.postMessage('stats');
    r = await next(w);
    expect(r.stats.reclaimWritebacks).toBeGreaterThan(0);
    let written = 0;
    for (let b = 0; b < 30; b++) {
      const d = onDisk(file, b);
      if (equal(d, pattern(b, 2))) written++;
      else expect(equal(d, pattern(b, 1)), `block ${b} is old or new, never torn`).toBe(true);
    }
    expect(written).toBe(r.stats.writebacks);
    expect(r.stats.dirty).toBe(30 - written);

    pool.freeBulk(held);
    w.postMessage('close');
    expect(await next(w)).toEqual({ closed: true });
    for (let b = 0; b < 30; b++) expect(equal(onDisk(file, b), pattern(b, 2))).toBe(true);
    expectAccounting(pool, 0);
  });
});
