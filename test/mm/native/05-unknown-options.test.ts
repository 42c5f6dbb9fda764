/**
 * Every options bag rejects a key nobody reads (a typo would otherwise take
 * the default quietly): ERR_INVALID_ARG_VALUE, naming the key and the nearest
 * valid one. The barrage (22) tries foreign keys everywhere; this names the
 * typos a person makes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { GFP, LoadShedder, Mempool, Pool, PoolCache, retryAlloc, SharedMutex } from '../../../src/index.js';
import { expectCode } from '../../fixtures/expect.js';

const pools: Pool[] = [];
afterEach(() => {
  for (const p of pools.splice(0)) if (!p.closed) p.close();
});
function pool(): Pool {
  const p = Pool.create({ size: '1MiB' });
  pools.push(p);
  return p;
}

describe('unknown option keys', () => {
  it.each([
    ['Pool.create', () => Pool.create({ sizee: '1MiB' } as never), 'sizee', 'size'],
    ['Pool.create pcp', () => Pool.create({ size: '1MiB', pcp: { bach: 8 } } as never), 'bach', 'batch'],
    ['Pool.create oom', () => Pool.create({ size: '1MiB', oom: { reeper: false } } as never), 'reeper', 'reaper'],
    ['Pool.create watermarks', () => Pool.create({ size: '1MiB', watermarks: { hgih: 3 } } as never), 'hgih', 'high'],
    ['Pool.attach', () => Pool.attach(pool().handle, { nmae: 'w' } as never), 'nmae', 'name'],
    ['pool.reserve', () => pool().reserve(1, { mdoe: 'tokens' } as never), 'mdoe', 'mode'],
    ['pool.registerTask', () => pool().registerTask({ name: 't', oomScoreAjd: 1 } as never), 'oomScoreAjd', 'oomScoreAdj'],
    ['pool.faultInject', () => pool().faultInject({ probabilty: 1 } as never), 'probabilty', 'probability'],
    ['Mempool.create', () => Mempool.create(pool(), { minNR: 1 } as never), 'minNR', 'minNr'],
    ['new PoolCache', () => new PoolCache(pool(), { maxBytes: '64KiB', maxEntires: 4 } as never), 'maxEntires', 'maxEntries'],
    ['new LoadShedder', () => new LoadShedder(pool(), { budget: 5 } as never), 'budget', 'budgetMs'],
    ['new SharedMutex', () => new SharedMutex({ reclaimFS: true } as never), 'reclaimFS', 'reclaimFs'],
  ])('%s', (_name, fn, key, near) => {
    const err = expectCode(fn, 'ERR_INVALID_ARG_VALUE');
    expect(err).toBeInstanceOf(TypeError);
    expect(err.message).toContain(`'${key}'`);
    expect(err.message).toContain(`did you mean '${near}'?`);
  });

  it('pool.allocAsync rejects', async () => {
    await expect(pool().allocAsync(GFP.KERNEL, 0, { timeout: 5 } as never)).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_VALUE',
      message: expect.stringContaining("did you mean 'timeoutMs'?"),
    });
  });

  it('retryAlloc', async () => {
    await expect(retryAlloc(pool(), GFP.KERNEL, { maxRetry: 1 } as never)).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_VALUE',
      message: expect.stringContaining("did you mean 'maxRetries'?"),
    });
  });

  it('a key whose value is undefined counts as absent', () => {
    expect(() => pool().reserve(1, { mdoe: undefined } as never).release()).not.toThrow();
  });

  it('nothing was left behind by a refused Pool.create', () => {
    const p = pool();
    expectCode(() => Pool.attach(p.handle, { allowMainThreadBlock: true } as never), 'ERR_INVALID_ARG_VALUE', /allowMainThreadBlocking/);
    expect(p.stats().threads).toBe(1);
  });
});
