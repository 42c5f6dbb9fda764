/**
 * XFS's kmem_alloc loop (retry.ts): the canary every 100 failures, the
 * error-configuration limits (maxRetries, retryTimeoutSeconds, first to
 * expire wins), fail_at_unmount through pool.close(), success as soon as
 * memory is freed, and what is not retried.
 *
 * Failures are made fast and deterministic with fault injection at 100%
 * (every attempt fails before the slow path) or a full pool and NOWAIT.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GFP, onWarning, Pool, type Warning } from '../../../src/index.js';
import { takeAll } from '../../fixtures/pool.js';
import { attachmentOf } from '../../../src/mm/pool.js';
import { retryAlloc, retryAllocSync, RetryAllocError } from '../../../src/lib/retry.js';
import { resetWarnings } from '../../../src/mm/stats/warn.js';
import { expectCode } from '../../fixtures/expect.js';
import { until } from '../../fixtures/workers.js';

let warnings: Warning[] = [];
let stop: () => void = () => {};
beforeEach(() => {
  resetWarnings();
  warnings = [];
  stop = onWarning((w) => warnings.push(w));
});
afterEach(() => stop());

/** Lets queued warnings reach subscribers (they are delivered from the event loop). */
const flushWarnings = () => new Promise((r) => setTimeout(r, 10));
const canaries = () => warnings.filter((w) => w.kind === 'alloc-deadlock');

/** A pool whose every allocation in this thread fails at once. */
function failingPool(options: Parameters<typeof Pool.create>[0] = {}): Pool {
  const pool = Pool.create({ size: 64 * 4096, ...options });
  pool.faultInject({ probability: 100, minOrder: 0, ignoreGfpWait: false, verbose: 0 });
  return pool;
}

async function rejection(p: Promise<unknown>): Promise<Error & { code: string } & Partial<RetryAllocError>> {
  try {
    await p;
  } catch (e) {
    return e as never;
  }
  throw new Error('expected the promise to reject');
}

describe('the canary', () => {
  it('maxRetries 250: exactly 2 canaries with the XFS text, then ENOMEM after exactly 250 retries', async () => {
    const pool = failingPool();
    const err = await rejection(retryAlloc(pool, GFP.KERNEL, { caller: 'xfs_buf_alloc', maxRetries: 250 }));
    await flushWarnings();
    expect(err).toBeInstanceOf(RetryAllocError);
    expect(err.code).toBe('ENOMEM');
    expect(err.retries).toBe(250);
    expect(err.limit).toBe('maxRetries');
    expect(err.message).toMatch(/^xfs_buf_alloc: .*after 250 retries/);
    // 251 attempts: the first and 250 retries.
    expect(attachmentOf(pool).faults!.stats.injected).toBe(251);
    const c = canaries();
    expect(c.map((w) => w.message)).toEqual([
      'possible memory allocation deadlock size 4096 in xfs_buf_alloc (mode:0xcc0)',
      'possible memory allocation deadlock size 4096 in xfs_buf_alloc (mode:0xcc0)',
    ]);
    expect(c.map((w) => w.retries)).toEqual([100, 200]);
    expect(c[0]!.code).toBe('NOFAIL_ALLOC_DEADLOCK');
    // The loop's attempts carry NOWARN: no generic failure warnings.
    expect(warnings.filter((w) => w.kind === 'alloc-failure')).toEqual([]);
    expect(attachmentOf(pool).closeHooks.size).toBe(0);
    pool.close();
  });

  it('names the size of the order and the mask as the caller gave it (without the added NOWARN)', async () => {
    const pool = failingPool();
    const gfp = GFP.NOFS | GFP.ZERO;
    await rejection(retryAlloc(pool, gfp, { order: 2, caller: 'xfs_da_grow', maxRetries: 100 }));
    await flushWarnings();
    expect(canaries().map((w) => w.message)).toEqual([
      `possible memory allocation deadlock size 16384 in xfs_da_grow (mode:0x${gfp.toString(16)})`,
    ]);
    pool.close();
  });

  it('is not rate-limited and is not silenced by the caller passing NOWARN', async () => {
    const pool = failingPool();
    await rejection(retryAlloc(pool, GFP.KERNEL | GFP.NOWARN, { caller: 'c', maxRetries: 300 }));
    await flushWarnings();
    expect(canaries().map((w) => w.message)).toEqual(
      Array(3).fill(`possible memory allocation deadlock size 4096 in c (mode:0x${(GFP.KERNEL | GFP.NOWARN).toString(16)})`),
    );
    pool.close();
  });

  it('retryAllocSync counts and warns the same way', async () => {
    const pool = failingPool({ allowMainThreadBlocking: true });
    const err = expectCode(() => retryAllocSync(pool, GFP.KERNEL, { caller: 'kmem_alloc', maxRetries: 250 }), 'ENOMEM');
    expect((err as RetryAllocError).retries).toBe(250);
    await flushWarnings();
    expect(canaries()).toHaveLength(2);
    expect(attachmentOf(pool).faults!.stats.injected).toBe(251);
    pool.close();
  });
});

describe('limits (XFS error configuration)', () => {
  it('maxRetries 0 and retryTimeoutSeconds 0 each fail at the first failure', async () => {
    const pool = failingPool();
    const a = await rejection(retryAlloc(pool, GFP.KERNEL, { maxRetries: 0 }));
    expect(a.retries).toBe(0);
    expect(a.limit).toBe('maxRetries');
    expect(a.message).toMatch(/^unknown: .*after 0 retries/);
    const b = await rejection(retryAlloc(pool, GFP.KERNEL, { retryTimeoutSeconds: 0 }));
    expect(b.retries).toBe(0);
    expect(b.limit).toBe('retryTimeoutSeconds');
    expect(attachmentOf(pool).faults!.stats.injected).toBe(2);
    const c = expectCode(() => retryAllocSync(pool, GFP.KERNEL, { retryTimeoutSeconds: 0 }), 'ENOMEM');
    expect((c as RetryAllocError).retries).toBe(0);
    pool.close();
  });

  it('retryTimeoutSeconds N gives up after N seconds when retries are unlimited', async () => {
    const pool = failingPool();
    // A yardstick on the same event loop: a chain of 1 ms sleeps (the
    // loop's own sleep for KERNEL) until 200 ms have passed. However fast
    // the machine, the loop should retry about as often and end about when
    // the chain does.
    let ticks = 0;
    let chainMs = 0;
    const t0 = performance.now();
    const chain = (async () => {
      while (performance.now() - t0 < 200) {
        await new Promise((r) => setTimeout(r, 1));
        ticks++;
      }
      chainMs = performance.now() - t0;
    })();
    const err = await rejection(retryAlloc(pool, GFP.KERNEL, { caller: 't', retryTimeoutSeconds: 0.2 }));
    const ms = performance.now() - t0;
    await chain;
    expect(err.limit).toBe('retryTimeoutSeconds');
    expect(attachmentOf(pool).faults!.stats.injected).toBe(err.retries! + 1);
    expect(err.retries).toBeGreaterThan(ticks / 3);
    expect(ms).toBeGreaterThanOrEqual(195);
    expect(ms).toBeLessThan(3 * chainMs);
    pool.close();
  });

  it('whichever limit expires first wins', async () => {
    const pool = failingPool();
    // The retry count first: 5 retries take ~5 ms, far below 10 s.
    const a = await rejection(retryAlloc(pool, GFP.KERNEL, { maxRetries: 5, retryTimeoutSeconds: 10 }));
    expect(a.limit).toBe('maxRetries');
    expect(a.retries).toBe(5);
    // The timeout first: 100 ms is far below a million retries.
    const b = await rejection(retryAlloc(pool, GFP.KERNEL, { maxRetries: 1_000_000, retryTimeoutSeconds: 0.1 }));
    expect(b.limit).toBe('retryTimeoutSeconds');
    expect(b.retries).toBeLessThan(1_000_000);
    pool.close();
  });

  it('validates options, naming the option', async () => {
    const pool = failingPool();
    await expect(retryAlloc(pool, GFP.KERNEL, { maxRetries: -2 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', message: /maxRetries/ });
    await expect(retryAlloc(pool, GFP.KERNEL, { maxRetries: 1.5 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', message: /maxRetries/ });
    await expect(retryAlloc(pool, GFP.KERNEL, { maxRetries: '3' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE', message: /maxRetries/ });
    await expect(retryAlloc(pool, GFP.KERNEL, { retryTimeoutSeconds: -0.5 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', message: /retryTimeoutSeconds/ });
    await expect(retryAlloc(pool, GFP.KERNEL, { retryTimeoutSeconds: 86_401 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', message: /retryTimeoutSeconds/ });
    await expect(retryAlloc(pool, GFP.KERNEL, { retryTimeoutSeconds: NaN })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', message: /retryTimeoutSeconds/ });
    await expect(retryAlloc(pool, GFP.KERNEL, { order: 11 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', message: /order/ });
    await expect(retryAlloc(pool, GFP.KERNEL, { caller: 7 as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE', message: /caller/ });
    await expect(retryAlloc(pool, GFP.KERNEL, null as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(retryAlloc(pool, 0x4000000 as never)).rejects.toMatchObject({ code: 'ERR_INVALID_GFP' });
    await expect(retryAlloc({} as never, GFP.KERNEL)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE', message: /pool/ });
    expectCode(() => retryAllocSync(pool, GFP.KERNEL, { maxRetries: -2 }), 'ERR_OUT_OF_RANGE', /maxRetries/);
    expect(attachmentOf(pool).faults!.stats.checked).toBe(0);
    pool.close();
  });
});

describe('fail_at_unmount: pool.close()', () => {
  it('ends a loop asleep between retries at once with ERR_POOL_CLOSED', async () => {
    // NOWAIT: memalloc_retry_wait sleeps 20 ms between attempts.
    const pool = failingPool();
    const faults = attachmentOf(pool).faults!;
    const p = rejection(retryAlloc(pool, GFP.NOWAIT, { caller: 'xfs_log' }));
    // Right after an attempt fails the loop is asleep for ~20 ms.
    while (faults.stats.injected < 3) await new Promise((r) => setImmediate(r));
    pool.close();
    // At once: close() cuts the sleep short, so the loop ends in the
    // microtasks that follow, before the event loop turns again (its own
    // 20 ms timer would need a turn).
    const first = await Promise.race([p, new Promise((r) => setImmediate(() => r('still pending')))]);
    expect(first).not.toBe('still pending');
    const err = await p;
    expect(err.code).toBe('ERR_POOL_CLOSED');
    expect(err.message).toMatch(/xfs_log/);
    expect(faults.stats.injected).toBe(3);
  });

  it('ends a loop waiting inside the allocator with ERR_POOL_CLOSED', async () => {
    // A full pool and no OOM killer: a small KERNEL allocation waits in the slow path.
    const pool = Pool.create({ size: 32 * 4096, watermarks: { min: 0, low: 0, high: 0 }, pcp: false });
    takeAll(pool, GFP.NOWAIT | GFP.HIGH | GFP.NOMEMALLOC);
    const failed = pool.stats().vmstat.alloc_fail;
    const p = rejection(retryAlloc(pool, GFP.KERNEL, { caller: 'xfs_trans_alloc' }));
    await until(() => pool.stats().zoneinfo.waiters > 0);
    expect(attachmentOf(pool).closeHooks.size).toBe(1);
    expect(pool.stats().vmstat.alloc_fail).toBe(failed); // still inside its first attempt
    pool.close();
    // At once: close() aborts the wait, and the loop ends before the event loop turns again.
    const first = await Promise.race([p, new Promise((r) => setImmediate(() => r('still pending')))]);
    expect(first).not.toBe('still pending');
    const err = await p;
    expect(err.code).toBe('ERR_POOL_CLOSED');
  });

  it('fails at once on a pool already closed, and removes its hook when a loop ends', async () => {
    const pool = failingPool();
    await rejection(retryAlloc(pool, GFP.KERNEL, { maxRetries: 1 }));
    expect(attachmentOf(pool).closeHooks.size).toBe(0);
    pool.close();
    await expect(retryAlloc(pool, GFP.KERNEL)).rejects.toMatchObject({ code: 'ERR_POOL_CLOSED' });
    expectCode(() => retryAllocSync(pool, GFP.KERNEL), 'ERR_POOL_CLOSED');
  });
});

describe('success and errors that are not retried', () => {
  it('succeeds as soon as memory is freed', async () => {
    const pool = Pool.create({ size: 32 * 4096, watermarks: { min: 0, low: 0, high: 0 }, pcp: false });
    const held = takeAll(pool, GFP.NOWAIT | GFP.HIGH | GFP.NOMEMALLOC);
    const failed = () => pool.stats().vmstat.alloc_fail;
    const failed0 = failed();
    let done = false;
    const p = retryAlloc(pool, GFP.NOWAIT, { caller: 'waiter' }).then((page) => {
      done = true;
      return page;
    });
    // It is retrying: attempts have failed, and it has no page.
    await until(() => failed() >= failed0 + 2);
    expect(done).toBe(false);
    pool.free(held.pop()!);
    const failedAtFree = failed();
    // At most one memalloc_retry_wait (20 ms for NOWAIT) after the free: the
    // loop's sleep began before this 20 ms timer, so it ends first, and the
    // attempt after it (microtasks) succeeds before this timer runs.
    const page = await Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no page within one retry wait of the free')), 20))]);
    expect(failed()).toBe(failedAtFree); // the first attempt after the free succeeded
    expect(page.order).toBe(0);
    pool.free(page);
    pool.freeBulk(held);
    pool.checkInvariants();
    pool.close();
  });

  it('retryAllocSync on the main thread throws ERR_WOULD_BLOCK where it would sleep', () => {
    const pool = failingPool();
    expectCode(() => retryAllocSync(pool, GFP.KERNEL, { caller: 'main' }), 'ERR_WOULD_BLOCK', /main/);
    expect(attachmentOf(pool).faults!.stats.injected).toBe(1);
    // It succeeds without sleeping when memory is there.
    pool.faultInject(null);
    const page = retryAllocSync(pool, GFP.KERNEL);
    pool.free(page);
    expect(attachmentOf(pool).closeHooks.size).toBe(0);
    pool.close();
  });

  it('rethrows other errors from the pool at once', async () => {
    const pool = Pool.create({ size: 32 * 4096, watermarks: { min: 0, low: 0, high: 0 }, pcp: false });
    const held = takeAll(pool, GFP.NOWAIT | GFP.HIGH | GFP.NOMEMALLOC);
    // A full pool, KERNEL, main thread, sync: the allocator itself would
    // have to wait and says ERR_WOULD_BLOCK; that is not ENOMEM.
    expectCode(() => retryAllocSync(pool, GFP.KERNEL, { maxRetries: 5 }), 'ERR_WOULD_BLOCK');
    pool.freeBulk(held);
    pool.close();
  });
});
