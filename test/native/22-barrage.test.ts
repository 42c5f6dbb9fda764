/**
 * The bad-input barrage (issue 7): every public method and every native
 * entry point, each argument replaced in turn by wrong types, NaN,
 * ±Infinity, negatives, fractions, huge numbers, forged and stale handles.
 * Every call must either succeed or throw an error with a stable string
 * `code`; the process never crashes, and the accounting still adds up.
 */
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { GFP, LoadShedder, metricsOf, type Page, Pool, PoolBuffer, PoolCache, SharedMutex } from '../../src/index.js';
import { native } from '../../src/native.js';

const BAD: unknown[] = [
  undefined,
  null,
  true,
  'x',
  '1',
  Symbol('s'),
  {},
  [],
  () => 1,
  10n,
  NaN,
  Infinity,
  -Infinity,
  -1,
  0.5,
  -0.5,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  Number.MAX_VALUE,
  -(2 ** 31),
  new Int32Array(4),
  new Float64Array(4),
  new Int32Array(new SharedArrayBuffer(16)),
  { pfn: 0, order: 0 },
  { pfn: 1e9, order: 0, gen: 1, pool: 1 },
];

const CODES = new Set([
  'ENOMEM',
  'ERR_INVALID_ARG_TYPE',
  'ERR_OUT_OF_RANGE',
  'ERR_INVALID_GFP',
  'ERR_DOUBLE_FREE',
  'ERR_BAD_PAGE',
  'ERR_POOL_CLOSED',
  'ERR_WOULD_BLOCK',
  'ERR_SYSTEM',
  'ERR_KILLED',
  'ERR_NOT_HOLDER',
  'EDEADLK',
]);

let tried = 0;

/** Calls fn(args) with each position replaced by each bad value. */
async function barrage(name: string, arity: number, good: unknown[], call: (args: unknown[]) => unknown): Promise<void> {
  for (let pos = 0; pos < arity; pos++) {
    for (const bad of BAD) {
      const args = [...good];
      args[pos] = bad;
      tried++;
      let result: unknown;
      try {
        result = call(args);
        if (result instanceof Promise) result = await result;
      } catch (e) {
        const code = (e as { code?: unknown }).code;
        if (typeof code !== 'string' || !CODES.has(code)) {
          throw new Error(`${name}(arg ${pos} = ${String(typeof bad === 'symbol' ? 'symbol' : bad)}) threw without a stable code: ${String(e)}`);
        }
      }
    }
  }
}

describe('bad-input barrage', () => {
  it('every public Pool method', async () => {
    const pool = Pool.create({ size: 128 * 4096, watermarks: { min: 4, low: 8, high: 12 }, oom: true });
    const other = Pool.create({ size: '1MiB' });
    const keep: Page[] = [];
    const page = () => {
      const p = pool.alloc();
      keep.push(p);
      return p;
    };
    // Results that are pages go back, so the pool never runs dry.
    const back = (r: unknown) => {
      if (Array.isArray(r)) for (const p of r) back(p);
      else if (r && typeof r === 'object' && 'pfn' in r && 'bytes' in (r as object)) {
        try {
          pool.free(r as Page);
        } catch {
          // freed already by the call itself
        }
      } else if (r && typeof r === 'object' && 'release' in r) (r as { release(): void }).release();
      else if (r instanceof PoolBuffer) r.free();
    };
    const foreign = other.alloc();
    const freed = pool.alloc();
    pool.free(freed);
    const extra: unknown[] = [foreign, freed, structuredClone({ pfn: 0, order: 0 })];
    const check = (name: string, arity: number, good: unknown[], fn: (a: unknown[]) => unknown) =>
      barrage(name, arity, good, (a) => {
        const r = fn(a);
        if (r instanceof Promise) return r.then(back);
        back(r);
        return r;
      });
    await check('alloc', 2, [GFP.KERNEL, 0], (a) => pool.alloc(a[0] as number, a[1] as number));
    await check('allocAsync', 3, [GFP.KERNEL, 0, { timeoutMs: 50 }], (a) => pool.allocAsync(a[0] as number, a[1] as number, a[2] as object));
    await check('free', 1, [page()], (a) => pool.free(a[0] as Page));
    for (const x of extra) await check('free(extra)', 1, [x], (a) => pool.free(a[0] as Page));
    await check('allocBulk', 3, [2, GFP.KERNEL, 0], (a) => pool.allocBulk(a[0] as number, a[1] as number, a[2] as number));
    await check('freeBulk', 1, [[page()]], (a) => pool.freeBulk(a[0] as Page[]));
    await check('transfer', 1, [page()], (a) => pool.transfer(a[0] as Page));
    await check('adopt', 1, [{ pool: 0, pfn: 0, order: 0, gen: 0 }], (a) => pool.adopt(a[0] as never));
    await check('reserve', 2, [4, {}], (a) => pool.reserve(a[0] as number, a[1] as object));
    await check('reserveAsync', 2, [4, { timeoutMs: 50 }], (a) => pool.reserveAsync(a[0] as number, a[1] as object));
    await check('registerShrinker', 1, [{ name: 's', needs: 'none', count: () => 0, scan: () => 0 }], (a) => {
      const off = pool.registerShrinker(a[0] as never);
      off();
    });
    await check('registerTask', 1, [{ name: 't' }], (a) => pool.registerTask(a[0] as never).unregister());
    await check('setWatermarks', 1, [{ min: 4, low: 8, high: 12 }], (a) => pool.setWatermarks(a[0] as never));
    await check('faultInject', 1, [null], (a) => pool.faultInject(a[0] as never));
    pool.faultInject(null);
    await check('psiTrigger', 2, [{ kind: 'some', stallUs: 1000, windowUs: 500_000 }, () => {}], (a) =>
      (pool.psiTrigger(a[0] as never, a[1] as never) as () => void)(),
    );
    await check('mempool', 1, [{ minNr: 1 }], (a) => pool.mempool(a[0] as never).destroy());
    await check('buffer', 2, [page(), 10], (a) => pool.buffer(a[0] as Page, a[1] as number));
    for (const x of extra) await check('buffer(extra)', 1, [x], (a) => pool.buffer(a[0] as Page));
    await check('allocBuffer', 2, [5000, GFP.KERNEL], (a) => pool.allocBuffer(a[0] as number, a[1] as number));
    await check('allocBufferAsync', 3, [5000, GFP.KERNEL, { timeoutMs: 50 }], (a) => pool.allocBufferAsync(a[0] as number, a[1] as number, a[2] as never));
    await check('metrics', 1, [{ prefix: 'x_', labels: { a: 'b' } }], (a) => pool.metrics(a[0] as never));
    await check('metricsOf', 2, [[{ pool, labels: { p: '1' } }], {}], (a) => metricsOf(a[0] as never, a[1] as never));
    await check('PoolCache', 1, [{ maxBytes: '64KiB' }], (a) => new PoolCache(pool, a[0] as never).close());
    const cache = new PoolCache(pool, { maxBytes: '64KiB' });
    await check('PoolCache.set', 2, ['k', 'v'], (a) => cache.set(a[0] as string, a[1] as string));
    await check('PoolCache.get', 1, ['k'], (a) => cache.get(a[0] as string));
    cache.close();
    await check('LoadShedder', 1, [{ policy: 'loop' }], (a) => new LoadShedder(pool, a[0] as never));
    await check('Pool.create', 1, [{ size: '64KiB' }], (a) => Pool.create(a[0] as never).close());
    await check('Pool.attach', 2, [pool.handle, {}], (a) => Pool.attach(a[0] as never, a[1] as never).close());
    const m = new SharedMutex({ name: 'm' });
    await check('SharedMutex.lock', 1, [pool], (a) => {
      m.lock(a[0] as never);
      m.unlock();
    });
    pool.setWatermarks({ min: 4, low: 8, high: 12 });
    for (const p of keep) {
      try {
        pool.free(p);
      } catch {
        // transferred or freed by the barrage
      }
    }
    pool.checkInvariants();
    const s = pool.stats();
    expect(s.freePages + s.cachedPages + s.allocatedPages).toBe(s.totalPages);
    expect(s.reservedPages).toBe(0);
    // After close(), everything throws ERR_POOL_CLOSED.
    pool.close();
    for (const fn of [() => pool.alloc(), () => pool.stats(), () => pool.reserve(1), () => pool.allocBulk(1), () => pool.free(keep[0]!)]) {
      expect(() => fn()).toThrow(expect.objectContaining({ code: 'ERR_POOL_CLOSED' }));
    }
    console.log(`bad-input barrage: ${tried} calls so far`);
  });

  it('every native entry point, called directly', async () => {
    const pool = Pool.create({ size: 128 * 4096 });
    const h = pool.handle;
    const ctl = new Int32Array(h.control);
    const [slot] = native.attach(h.id, h.nonce, ctl);
    const out = new Int32Array(64);
    const stats = new Float64Array(native.statsLength);
    const fns: Array<[string, number, unknown[], (a: unknown[]) => unknown]> = [
      ['alloc', 4, [slot, 0, 1, 0], (a) => native.alloc(...(a as [number, number, number, number]))],
      ['free', 4, [slot, 0, 0, 0], (a) => native.free(...(a as [number, number, number, number]))],
      ['allocBulk', 6, [slot, 2, 0, 1, 0, out], (a) => native.allocBulk(...(a as [number, number, number, number, number, Int32Array]))],
      ['freeBulk', 3, [slot, new Int32Array([0, 0, 0]), 1], (a) => native.freeBulk(...(a as [number, Int32Array, number]))],
      ['setOwner', 6, [slot, 0, 0, 0, 0, 0], (a) => native.setOwner(...(a as [number, number, number, number, number, number]))],
      ['meta', 2, [slot, 0], (a) => native.meta(...(a as [number, number]))],
      ['region', 1, [slot], (a) => native.region(a[0] as number)],
      ['taskCreate', 1, [slot], (a) => native.taskCreate(a[0] as number)],
      ['taskReclaim', 3, [slot, 99, false], (a) => native.taskReclaim(...(a as [number, number, boolean]))],
      ['taskPages', 2, [slot, 0], (a) => native.taskPages(...(a as [number, number]))],
      ['taskLive', 2, [slot, 0], (a) => native.taskLive(...(a as [number, number]))],
      ['setWatermarks', 4, [slot, 1, 2, 3], (a) => native.setWatermarks(...(a as [number, number, number, number]))],
      ['addReserved', 2, [slot, 0], (a) => native.addReserved(...(a as [number, number]))],
      ['tryReserve', 3, [slot, 1, 0], (a) => native.tryReserve(...(a as [number, number, number]))],
      ['stats', 2, [slot, stats], (a) => native.stats(...(a as [number, Float64Array]))],
      ['check', 1, [slot], (a) => native.check(a[0] as number)],
      ['attach', 3, [h.id, h.nonce, ctl], (a) => native.detach(native.attach(...(a as [number, number, Int32Array]))[0])],
      ['create', 8, [65536, 4, 0, 0, 0, 0, -1, new Int32Array(new SharedArrayBuffer(ctl.byteLength))], (a) =>
        native.detach(native.create(...(a as [number, number, number, number, number, number, number, Int32Array]))[0])],
      ['detach', 1, [9999], (a) => native.detach(a[0] as number)],
      ['init', 1, [{}], (a) => native.init(a[0] as object)],
    ];
    const before = tried;
    for (const [name, arity, good, fn] of fns) await barrage(`native.${name}`, arity, good, fn);
    // Too few arguments, too.
    for (const [name, , , fn] of fns) await barrage(`native.${name}()`, 0, [], () => fn([]));
    expect(native.check(slot)).toBeNull();
    native.detach(slot);
    console.log(`bad-input barrage: ${tried - before} native calls`);
    pool.checkInvariants();
  });

  it('a handle of a pool whose creating thread exited is closed; a page handle of it is foreign', async () => {
    const w = new Worker(new URL('../fixtures/create-and-exit.mjs', import.meta.url));
    const { handle, page } = await new Promise<any>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    await new Promise((r) => w.once('exit', r));
    expect(() => Pool.attach(handle)).toThrow(expect.objectContaining({ code: 'ERR_POOL_CLOSED' }));
    const mine = Pool.create({ size: '1MiB' });
    expect(() => mine.free(page)).toThrow(expect.objectContaining({ code: 'ERR_BAD_PAGE' }));
    expect(() => mine.adopt({ pool: handle.id, ...page, gen: 1 })).toThrow(expect.objectContaining({ code: 'ERR_BAD_PAGE' }));
    mine.checkInvariants();
  });
});
