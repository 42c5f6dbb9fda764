/**
 * Pages come back when a thread goes away (DESIGN §2, the reaper path):
 * a worker terminated while it holds pages — blocked, idle, busy, or waiting
 * inside an allocation — and a worker that ends on its own without freeing
 * (returning, process.exit, an uncaught exception). Every time, once the
 * worker's 'exit' event has fired, the pool is whole again, its task is
 * gone, and nothing of its page cache is left in the stats.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { GFP, PAGE_SIZE, Pool } from '../../../src/index.js';
import { checkStamp } from '../../fixtures/pattern.mjs';
import { expectAccounting, expectCode } from '../../fixtures/expect.js';
import { eventually, type Message, TestWorker } from '../../fixtures/workers.js';

const TOTAL = 4096;
const BLOCKS = [
  [0, 100],
  [1, 10],
  [3, 5],
  [6, 2],
];
const HELD = 100 + 20 + 40 + 128;

const pools: Pool[] = [];
const workers: TestWorker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
  for (const p of pools.splice(0)) if (!p.closed) p.close();
});

function create(watermarks = { min: 0, low: 0, high: 0 }): Pool {
  const p = Pool.create({ size: TOTAL * PAGE_SIZE, watermarks });
  pools.push(p);
  return p;
}

function start(pool: Pool, mode: string, blocks = BLOCKS): TestWorker {
  const w = new TestWorker('./hold-worker.mjs', { handle: pool.handle, mode, blocks });
  workers.push(w);
  return w;
}

/** While the worker holds what it reported: the main thread sees it as allocated to the worker's task. */
function expectHeld(pool: Pool, msg: Message, tasksBefore: number): void {
  const s = pool.stats();
  expect(msg.threadPages).toBe(HELD);
  expect(s.allocatedPages).toBe(msg.threadPages);
  expect(s.threads).toBe(2);
  expect(s.tasks).toBe(tasksBefore + 1);
  expect(s.cachedByTask[msg.taskId] ?? 0).toBe(msg.cachedPages);
  for (const pfn of msg.pfns as number[]) expect(pool._meta(pfn)).toMatchObject({ state: 'allocated', owner: msg.taskId });
  expectAccounting(pool);
}

/** After the worker's exit: every page is back and its task is gone. */
function expectReturned(pool: Pool, msg: Message, tasksBefore: number): void {
  const s = pool.stats();
  expect(s.freePages).toBe(TOTAL);
  expect(s.allocatedPages).toBe(0);
  expect(s.tasks).toBe(tasksBefore);
  expect(s.threads).toBe(1);
  expect(s.cachedByTask[msg.taskId]).toBeUndefined();
  expect(s.counters.pgalloc).toBe(s.counters.pgfree);
  for (const pfn of msg.pfns as number[]) expect(pool._meta(pfn).state).not.toBe('allocated');
  expectAccounting(pool, 0);
}

describe('a worker terminated while it holds pages gives them all back', () => {
  it.each(['wait', 'idle', 'busy'])('terminated while %s', async (mode) => {
    const pool = create();
    const tasksBefore = pool.stats().tasks;
    const w = start(pool, mode);
    const msg = await w.next();
    if (mode === 'busy') {
      expect(await w.next()).toEqual({ busy: true });
    } else {
      expectHeld(pool, msg, tasksBefore);
    }
    expect(await w.terminate()).toBe(1);
    expectReturned(pool, msg, tasksBefore);
    // The pool is usable as before.
    const pages = pool.allocBulk(TOTAL, GFP.KERNEL, 0);
    pool.freeBulk(pages);
    expectAccounting(pool, 0);
  });

  async function terminateWhileWaiting(pool: Pool): Promise<void> {
    const w = start(pool, 'alloc-wait', [[0, 1]]);
    const msg = await w.next();
    expect(msg.waiting).toBe(true);
    expect(pool.stats().freePages).toBe(1000);
    // It is parked in the slow path's wait for memory.
    expect(await eventually(() => pool.stats().zoneinfo.waiters > 0)).toBe(true);
    expect(await w.terminate()).toBe(1);
  }

  it('terminated while it waits inside an allocation', async () => {
    const pool = create({ min: 1000, low: 1100, high: 1200 });
    const tasksBefore = pool.stats().tasks;
    await terminateWhileWaiting(pool);
    const s = pool.stats();
    expect(s.freePages).toBe(TOTAL);
    expect(s.allocatedPages).toBe(0);
    expect(s.tasks).toBe(tasksBefore);
    expectAccounting(pool, 0);
  });

  // Regression test (fixed): src/mm/wait.ts waitSync counts the thread in CTL.WAITERS and takes it
  // out in a `finally`, which does not run when the worker is terminated
  // inside Atomics.wait. The count stays up for the life of the pool: stats
  // report a waiter that does not exist, and every later order-0 free on
  // every thread bypasses its page cache (pool.ts free() checks WAITERS).
  it('terminated while it waits inside an allocation: no waiter count left behind', async () => {
    const pool = create({ min: 1000, low: 1100, high: 1200 });
    await terminateWhileWaiting(pool);
    expect(pool.stats().zoneinfo.waiters).toBe(0);
    // And the page cache works as before.
    const p = pool.alloc();
    pool.free(p);
    expect(pool.stats().cachedPages).toBeGreaterThan(0);
  });

  it('several workers terminated at once', async () => {
    const pool = create();
    const tasksBefore = pool.stats().tasks;
    const ws = ['wait', 'idle', 'wait', 'idle'].map((mode) => start(pool, mode, [[0, 50], [2, 10]]));
    const msgs = await Promise.all(ws.map((w) => w.next()));
    const s = pool.stats();
    expect(s.allocatedPages).toBe(msgs.reduce((n, m) => n + m.threadPages, 0));
    expect(s.tasks).toBe(tasksBefore + 4);
    expect(new Set(msgs.map((m) => m.taskId)).size).toBe(4);
    expect(await Promise.all(ws.map((w) => w.terminate()))).toEqual([1, 1, 1, 1]);
    const after = pool.stats();
    expect(after.freePages).toBe(TOTAL);
    expect(after.tasks).toBe(tasksBefore);
    expectAccounting(pool, 0);
  });
});

describe('a worker that ends without freeing gives its pages back', () => {
  it.each([
    ['returns', 'return', 0],
    ['calls process.exit(3)', 'exit', 3],
    ['throws', 'throw', 1],
  ])('when it %s', async (_name, mode, code) => {
    const pool = create();
    const tasksBefore = pool.stats().tasks;
    const w = start(pool, mode);
    const msg = await w.next();
    if (mode !== 'return') {
      // Still there, holding its pages, until told to go.
      expectHeld(pool, msg, tasksBefore);
      w.post('go');
    }
    expect(await w.exited()).toBe(code);
    if (mode === 'throw') expect(w.error?.message).toBe('worker failed on purpose');
    expectReturned(pool, msg, tasksBefore);
  });

  it("the worker's stamps are still in the returned memory, which is free to reuse", async () => {
    const pool = create();
    const w = start(pool, 'return', [[6, 1]]);
    const msg = await w.next();
    await w.exited();
    expectReturned(pool, msg, pool.stats().tasks);
    // Nothing zeroes a page on free: the block handed out again is the same memory.
    const page = pool.alloc(GFP.KERNEL, 6);
    expect(page.pfn).toBe(msg.pfns[0]);
    expect(checkStamp(page, 1, 1)).toBe(0);
    pool.free(page);
  });
});

describe('pool lifetime across threads', () => {
  it('outlives the thread that created it, and goes with the last one', async () => {
    const pool = create();
    const handle = pool.handle;
    const w = start(pool, 'idle');
    const msg = await w.next();
    // The creator leaves; the worker still holds its pages in a live pool.
    expect(pool.close()).toBe(0);
    const again = Pool.attach(handle);
    const s = again.stats();
    expect(s.threads).toBe(2);
    expect(s.allocatedPages).toBe(msg.threadPages);
    again.close();
    await w.terminate();
    // The last attachment is gone: the pool is destroyed.
    expectCode(() => Pool.attach(handle), 'ERR_POOL_CLOSED');
  });
});
