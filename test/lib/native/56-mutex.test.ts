/**
 * SharedMutex on one thread: handles and attach, the per-thread registry
 * of names, tryLock/unlock/holder, EDEADLK for a sync re-lock, two async
 * flows of one thread contending, abort, withLock, logical tasks as
 * holders, reclaimFs locks with their stacks, and the one-pool binding.
 * Contention across threads is test/lib/workers/45-mutex.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { Pool } from '../../../src/index.js';
import { SharedMutex, THREAD_HOLDER_BASE } from '../../../src/lib/mutex/mutex.js';
import { heldReclaimFsLocks, mutexName } from '../../../src/lib/mutex/held.js';
import { native } from '../../../src/binding/native.js';
import { attachmentOf } from '../../../src/mm/pool.js';
import { runAsTask } from '../../../src/mm/task.js';
import { expectCode } from '../../fixtures/expect.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('creation, handles and the registry', () => {
  it('has a random non-zero id, a default name, and a structured-clonable handle', () => {
    const m = new SharedMutex();
    expect(m.id).not.toBe(0);
    expect(Number.isInteger(m.id)).toBe(true);
    expect(m.name).toBe(`mutex-${(m.id >>> 0).toString(16)}`);
    expect(m.reclaimFs).toBe(false);
    const clone = structuredClone(m.handle);
    const a = SharedMutex.attach(clone);
    expect(a.id).toBe(m.id);
    expect(a.name).toBe(m.name);
    // The same lock: taken through one, seen through the other.
    expect(m.tryLock()).toBe(true);
    expect(a.holder).toBe(THREAD_HOLDER_BASE);
    expect(a.tryLock()).toBe(false);
    a.unlock(); // same thread, same holder: either instance may unlock
    expect(m.holder).toBe(0);
  });

  it('attach() reads name and flags from the shared words when the handle has only { sab }', () => {
    const m = new SharedMutex({ name: 'xfs_ilock', reclaimFs: true });
    const a = SharedMutex.attach({ sab: m.handle.sab } as never);
    expect(a.name).toBe('xfs_ilock');
    expect(a.reclaimFs).toBe(true);
    expect(a.id).toBe(m.id);
  });

  it('validates options and handles, naming what is wrong', () => {
    expectCode(() => new SharedMutex({ name: 5 as never }), 'ERR_INVALID_ARG_TYPE', /options\.name/);
    expectCode(() => new SharedMutex({ reclaimFs: 'yes' as never }), 'ERR_INVALID_ARG_TYPE', /options\.reclaimFs/);
    expectCode(() => new SharedMutex(null as never), 'ERR_INVALID_ARG_TYPE', /options/);
    expectCode(() => SharedMutex.attach(null as never), 'ERR_INVALID_ARG_TYPE', /handle/);
    expectCode(() => SharedMutex.attach({ sab: new SharedArrayBuffer(256) } as never), 'ERR_INVALID_ARG_TYPE', /not a SharedMutex/);
    const m = new SharedMutex();
    expectCode(() => SharedMutex.attach({ ...m.handle, id: m.id + 1 }), 'ERR_INVALID_ARG_TYPE', /does not match/);
    expectCode(() => m.withLock(null as never), 'ERR_INVALID_ARG_TYPE', /fn/);
    expectCode(() => m.lock({} as never), 'ERR_INVALID_ARG_TYPE', /pool/);
  });

  it('mutexName() names mutexes created or attached in this thread, by id', () => {
    const m = new SharedMutex({ name: 'inode->i_rwsem' });
    expect(mutexName(m.id)).toBe('inode->i_rwsem');
    expect(mutexName(0)).toBeUndefined();
  });
});

describe('locking on one thread', () => {
  it('tryLock / unlock / holder; unlock of a free mutex throws ERR_NOT_HOLDER', () => {
    const m = new SharedMutex();
    expect(m.holder).toBe(0);
    expectCode(() => m.unlock(), 'ERR_NOT_HOLDER');
    expect(m.tryLock()).toBe(true);
    expect(m.heldByThisThread).toBe(true);
    expect(m.tryLock()).toBe(false);
    m.unlock();
    expect(m.heldByThisThread).toBe(false);
    expectCode(() => m.unlock(), 'ERR_NOT_HOLDER');
  });

  it('a sync lock of a mutex this thread holds throws EDEADLK instead of hanging', () => {
    const pool = Pool.create({ size: 16 * 4096, allowMainThreadBlocking: true });
    const m = new SharedMutex();
    m.lock(pool);
    expect(m.holder).toBe(pool.taskId);
    expectCode(() => m.lock(pool), 'EDEADLK');
    expectCode(() => m.lockKillable(pool), 'EDEADLK');
    m.unlock();
    pool.close();
  });

  it('two async flows of one thread: the second lockAsync waits for the first unlock', async () => {
    const m = new SharedMutex();
    const order: string[] = [];
    const flow = (name: string) =>
      m.withLockAsync(async () => {
        order.push(`${name} in`);
        await tick();
        order.push(`${name} out`);
      });
    await Promise.all([flow('a'), flow('b'), flow('c')]);
    expect(order).toEqual(['a in', 'a out', 'b in', 'b out', 'c in', 'c out']);
    expect(m.holder).toBe(0);
    expect(m.waiters).toBe(0);
  });

  it('lockAsync is abortable: it rejects with the reason and leaves no waiter behind', async () => {
    const m = new SharedMutex();
    m.lock();
    const ac = new AbortController();
    const p = m.lockAsync(undefined, { signal: ac.signal });
    await tick();
    expect(m.waiters).toBe(1);
    ac.abort(new Error('gave up'));
    await expect(p).rejects.toThrow('gave up');
    expect(m.waiters).toBe(0);
    expect(m.holder).toBe(THREAD_HOLDER_BASE);
    m.unlock();
    await expect(m.lockAsync(undefined, { signal: AbortSignal.abort() })).rejects.toThrow();
    expect(m.holder).toBe(0);
  });

  it('withLock unlocks when fn throws and returns what fn returns', () => {
    const m = new SharedMutex();
    expect(m.withLock(() => 42)).toBe(42);
    expect(() =>
      m.withLock(() => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(m.holder).toBe(0);
  });
});

describe('holders with a pool', () => {
  it("the holder is the running logical task, else the thread's task; only that task may unlock", async () => {
    const pool = Pool.create({ size: 16 * 4096 });
    const core = attachmentOf(pool);
    const task = native.taskCreate(core.slot);
    expect(task).toBeGreaterThan(0);
    const m = new SharedMutex();
    await runAsTask(task, () => m.lockAsync(pool));
    expect(m.holder).toBe(task);
    expectCode(() => m.unlock(), 'ERR_NOT_HOLDER', new RegExp(`task ${task} holds it`));
    runAsTask(task, () => m.unlock());
    m.lock(pool);
    expect(m.holder).toBe(pool.taskId);
    m.unlock();
    native.taskReclaim(core.slot, task, true);
    pool.close();
  });

  it('a lockKillable whose task is not a victim behaves like lock; an uncontended one succeeds even for a victim', async () => {
    const pool = Pool.create({ size: 16 * 4096 });
    const m = new SharedMutex();
    m.lockKillable(pool);
    m.unlock();
    const { TASK_FLAG } = await import('../../../src/mm/task-table.js');
    attachmentOf(pool).tasks.setFlags(pool.taskId, TASK_FLAG.VICTIM);
    m.lockKillable(pool); // the kernel's fast path takes an uncontended mutex regardless
    m.unlock();
    attachmentOf(pool).tasks.clearFlags(pool.taskId, TASK_FLAG.VICTIM);
    pool.close();
  });

  it('a mutex is bound to the first pool it is locked with', () => {
    const a = Pool.create({ size: 16 * 4096 });
    const b = Pool.create({ size: 16 * 4096 });
    const m = new SharedMutex({ name: 'bound' });
    m.lock(a);
    m.unlock();
    expectCode(() => m.tryLock(b), 'ERR_INVALID_ARG_TYPE', /bound is used with pool/);
    m.lock(); // without a pool is always allowed
    m.unlock();
    a.close();
    expectCode(() => m.lock(a), 'ERR_POOL_CLOSED');
    b.close();
  });
});

describe('reclaimFs locks (fs_reclaim)', () => {
  it('heldReclaimFsLocks lists the reclaimFs locks this thread holds, with where each was taken', () => {
    const fs = new SharedMutex({ name: 'sb_internal', reclaimFs: true });
    const plain = new SharedMutex({ name: 'plain' });
    expect(heldReclaimFsLocks()).toEqual([]);
    plain.lock();
    fs.lock();
    const held = heldReclaimFsLocks();
    expect(held).toHaveLength(1);
    expect(held[0]).toMatchObject({ name: 'sb_internal', id: fs.id });
    expect(held[0]!.stack).toMatch(/56-mutex\.test\.ts/);
    expect(held[0]!.stack.split('\n')[0]).toMatch(/^\s+at /);
    fs.unlock();
    plain.unlock();
    expect(heldReclaimFsLocks()).toEqual([]);
  });
});
