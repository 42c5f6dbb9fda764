/**
 * SharedMutex across real workers: mutual exclusion under contention, the
 * holder and waiters in the pool's task table while a worker is blocked,
 * lockKillable versus the uninterruptible lock() for an OOM victim (the
 * TIF_MEMDIE deadlock), taking over a terminated holder's lock
 * (EOWNERDEAD), and unlock by a thread that does not hold it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Pool } from '../../../src/index.js';
import { SharedMutex, THREAD_HOLDER_BASE } from '../../../src/lib/mutex/mutex.js';
import { attachmentOf } from '../../../src/mm/pool.js';
import { TASK_FLAG, TASK_WORD } from '../../../src/mm/task-table.js';
import { eventually, TestWorker } from '../../fixtures/workers.js';

const fixture = '../fixtures/mutex-worker.mjs';
const workers: TestWorker[] = [];
const pools: Pool[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
  for (const p of pools.splice(0)) p.close();
});

function spawn(data: Record<string, unknown>): TestWorker {
  const w = new TestWorker(fixture, data);
  workers.push(w);
  return w;
}

function makePool(): Pool {
  const pool = Pool.create({ size: 64 * 4096, pcp: false });
  pools.push(pool);
  return pool;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('mutual exclusion', () => {
  it('4 workers x 10k lock/unlock with a pool: a non-atomic shared counter ends exact', async () => {
    const pool = makePool();
    const m = new SharedMutex({ name: 'counter_lock' });
    const counter = new SharedArrayBuffer(8);
    const start = new SharedArrayBuffer(4);
    const n = 10_000;
    const ws = Array.from({ length: 4 }, () =>
      spawn({ scenario: 'contend', mutex: m.handle, pool: pool.handle, counter, start, count: n }),
    );
    for (const w of ws) expect((await w.next()).ready).toBe(true);
    Atomics.store(new Int32Array(start), 0, 1);
    Atomics.notify(new Int32Array(start), 0);
    const done = await Promise.all(ws.map((w) => w.next(60_000)));
    for (const d of done) expect(d.done).toBe(true);
    expect(new Int32Array(counter)[0]).toBe(4 * n);
    expect(m.holder).toBe(0);
    expect(m.waiters).toBe(0);
    // They did contend: at some point someone waited.
    expect(Math.max(...done.map((d) => d.maxWaiters))).toBeGreaterThan(0);
  });

  it('workers without a pool and the main thread (lockAsync) together: exact count', async () => {
    const m = new SharedMutex();
    const counter = new SharedArrayBuffer(8);
    const start = new SharedArrayBuffer(4);
    const n = 5_000;
    const ws = Array.from({ length: 2 }, () => spawn({ scenario: 'contend', mutex: m.handle, counter, start, count: n }));
    for (const w of ws) await w.next();
    const c = new Int32Array(counter);
    Atomics.store(new Int32Array(start), 0, 1);
    Atomics.notify(new Int32Array(start), 0);
    const mainRounds = 300;
    for (let i = 0; i < mainRounds; i++) {
      await m.lockAsync();
      expect(m.holder).toBe(THREAD_HOLDER_BASE); // the main thread's threadId is 0
      const v = c[0]!;
      await Promise.resolve();
      c[0] = v + 1;
      m.unlock();
    }
    for (const w of ws) expect((await w.next(60_000)).done).toBe(true);
    expect(c[0]).toBe(2 * n + mainRounds);
  });
});

describe('visibility in the task table', () => {
  it('a blocked worker shows BLOCKED_ON = mutex id and HOLDER = the holding task; both clear once it acquires', async () => {
    const pool = makePool();
    const tasks = attachmentOf(pool).tasks;
    const m = new SharedMutex({ name: 'i_mutex' });
    const holder = spawn({ scenario: 'hold', mutex: m.handle, pool: pool.handle });
    const h = await holder.next();
    expect(h.locked).toBe(true);
    expect(h.holder).toBe(h.task);
    expect(m.holder).toBe(h.task);

    const blocked = spawn({ scenario: 'block', mutex: m.handle, pool: pool.handle });
    const b = await blocked.next();
    expect(await eventually(() => tasks.get(b.task, TASK_WORD.BLOCKED_ON) === m.id)).toBe(true);
    expect(tasks.get(b.task, TASK_WORD.HOLDER)).toBe(h.task);
    expect(m.waiters).toBe(1);
    expect(m.holder).toBe(h.task);

    holder.post('release');
    const acquired = await blocked.next();
    expect(acquired).toMatchObject({ acquired: true, ownerDied: false, holder: b.task });
    expect(tasks.get(b.task, TASK_WORD.BLOCKED_ON)).toBe(0);
    expect(tasks.get(b.task, TASK_WORD.HOLDER)).toBe(0);
    expect(m.waiters).toBe(0);
    blocked.post('release');
    expect((await blocked.next()).released).toBe(true);
    expect(m.holder).toBe(0);
  });
});

describe('OOM victims: lockKillable versus lock()', () => {
  it('lockKillable gives up with ERR_KILLED once its task is flagged VICTIM while it waits', async () => {
    const pool = makePool();
    const tasks = attachmentOf(pool).tasks;
    const m = new SharedMutex({ name: 'mmap_lock' });
    const holder = spawn({ scenario: 'hold', mutex: m.handle, pool: pool.handle });
    await holder.next();
    const k = spawn({ scenario: 'killable', mutex: m.handle, pool: pool.handle });
    const { task } = await k.next();
    expect(await eventually(() => tasks.get(task, TASK_WORD.BLOCKED_ON) === m.id)).toBe(true);
    await sleep(30);
    tasks.setFlags(task, TASK_FLAG.VICTIM);
    const r = await k.next(5_000);
    expect(r).toMatchObject({ ok: false, code: 'ERR_KILLED', waitersAfter: 0, blockedOnAfter: 0 });
    expect(r.message).toMatch(/mmap_lock/);
    expect(m.holder).not.toBe(task);
    tasks.clearFlags(task, TASK_FLAG.VICTIM);
  });

  it('a task that flags itself VICTIM (as the worker does) fails a contended lockKillable at once', async () => {
    const pool = makePool();
    const m = new SharedMutex();
    const holder = spawn({ scenario: 'hold', mutex: m.handle, pool: pool.handle });
    const h = await holder.next();
    const k = spawn({ scenario: 'killable', mutex: m.handle, pool: pool.handle, selfVictim: true });
    await k.next();
    expect(await k.next(5_000)).toMatchObject({ ok: false, code: 'ERR_KILLED' });
    expect(m.holder).toBe(h.task);
  });

  it('lock() of a VICTIM does not give up (the TIF_MEMDIE deadlock) and gets the lock once it is released', async () => {
    const pool = makePool();
    const tasks = attachmentOf(pool).tasks;
    const m = new SharedMutex({ name: 'i_rwsem' });
    const holder = spawn({ scenario: 'hold', mutex: m.handle, pool: pool.handle });
    await holder.next();
    const v = spawn({ scenario: 'block', mutex: m.handle, pool: pool.handle, selfVictim: true });
    const { task } = await v.next();
    expect(tasks.flags(task) & TASK_FLAG.VICTIM).toBe(TASK_FLAG.VICTIM);
    expect(await eventually(() => tasks.get(task, TASK_WORD.BLOCKED_ON) === m.id)).toBe(true);
    // Still blocked well past many wait slices.
    let spoke = false;
    v.worker.on('message', () => (spoke = true));
    await sleep(300);
    expect(spoke).toBe(false);
    expect(tasks.get(task, TASK_WORD.BLOCKED_ON)).toBe(m.id);
    holder.post('release');
    expect(await v.next()).toMatchObject({ acquired: true, holder: task });
    v.post('release');
    await v.next();
  });

  it('a kill sent as the OOM killer sends it is not taken inside lock(): the victim dies only after the lock is released', async () => {
    const pool = makePool();
    const tasks = attachmentOf(pool).tasks;
    const ctl = attachmentOf(pool).ctl;
    const m = new SharedMutex({ name: 'i_rwsem' });
    const holder = spawn({ scenario: 'hold', mutex: m.handle, pool: pool.handle });
    await holder.next();
    const v = spawn({ scenario: 'block', mutex: m.handle, pool: pool.handle });
    const { task } = await v.next();
    expect(await eventually(() => tasks.get(task, TASK_WORD.BLOCKED_ON) === m.id)).toBe(true);
    // oom.ts #kill: VICTIM | SIGPENDING, then KILL_SEQ bumped and notified.
    tasks.setFlags(task, TASK_FLAG.VICTIM | TASK_FLAG.SIGPENDING);
    Atomics.add(ctl, tasks.wordOf(task, TASK_WORD.KILL_SEQ), 1);
    Atomics.notify(ctl, tasks.wordOf(task, TASK_WORD.KILL_SEQ));
    let exited = false;
    void v.exit.then(() => (exited = true));
    await sleep(300);
    expect(exited).toBe(false); // stuck in an uninterruptible lock: the kill waits
    expect(tasks.get(task, TASK_WORD.BLOCKED_ON)).toBe(m.id);
    holder.post('release');
    // It gets the lock, then takes the kill on its event loop (a worker's default: exit).
    expect(await v.next()).toMatchObject({ acquired: true, holder: task });
    expect(await v.exited(5_000)).toBe(137);
  });
});

describe('dead holders (robust futex, EOWNERDEAD)', () => {
  it('a waiter takes over the lock of a terminated holder and sees ownerDied until it unlocks', async () => {
    const pool = makePool();
    const m = new SharedMutex({ name: 'agl_lock' });
    const holder = spawn({ scenario: 'hold', mutex: m.handle, pool: pool.handle });
    const h = await holder.next();
    const waiter = spawn({ scenario: 'block', mutex: m.handle, pool: pool.handle });
    const w = await waiter.next();
    expect(await eventually(() => m.waiters === 1)).toBe(true);
    await holder.terminate();
    const r = await waiter.next(5_000);
    expect(r).toMatchObject({ acquired: true, ownerDied: true, holder: w.task });
    expect(r.holder).not.toBe(h.task);
    expect(m.ownerDied).toBe(true);
    waiter.post('release');
    expect(await waiter.next()).toMatchObject({ released: true, ownerDied: false });
    expect(m.ownerDied).toBe(false);
    expect(m.holder).toBe(0);
  });

  it('tryLock(pool) on the main thread takes over a dead holder; without a pool it does not', async () => {
    const pool = makePool();
    const m = new SharedMutex();
    const holder = spawn({ scenario: 'hold', mutex: m.handle, pool: pool.handle });
    const h = await holder.next();
    expect(m.tryLock(pool)).toBe(false);
    await holder.terminate();
    expect(m.tryLock()).toBe(false); // no pool: nothing says the holder is dead
    expect(m.holder).toBe(h.task);
    expect(m.tryLock(pool)).toBe(true);
    expect(m.ownerDied).toBe(true);
    expect(m.holder).toBe(pool.taskId);
    m.unlock();
    expect(m.ownerDied).toBe(false);
    expect(m.tryLock(pool)).toBe(true);
    expect(m.ownerDied).toBe(false);
    m.unlock();
  });
});

describe('the main thread', () => {
  it('a contended lock() throws ERR_WOULD_BLOCK; lockAsync() waits and gets it when the worker lets go', async () => {
    const pool = makePool();
    const m = new SharedMutex();
    const holder = spawn({ scenario: 'hold', mutex: m.handle, pool: pool.handle });
    const h = await holder.next();
    expect(() => m.lock(pool)).toThrow(expect.objectContaining({ code: 'ERR_WOULD_BLOCK' }));
    expect(() => m.lock()).toThrow(expect.objectContaining({ code: 'ERR_WOULD_BLOCK' }));
    let got = false;
    const p = m.lockAsync(pool).then(() => (got = true));
    expect(await eventually(() => attachmentOf(pool).tasks.get(pool.taskId, TASK_WORD.BLOCKED_ON) === m.id)).toBe(true);
    expect(attachmentOf(pool).tasks.get(pool.taskId, TASK_WORD.HOLDER)).toBe(h.task);
    expect(got).toBe(false);
    holder.post('release');
    await p;
    expect(m.holder).toBe(pool.taskId);
    expect(attachmentOf(pool).tasks.get(pool.taskId, TASK_WORD.BLOCKED_ON)).toBe(0);
    m.unlock();
  });
});

describe('ownership', () => {
  it('unlock by a thread that does not hold the lock throws ERR_NOT_HOLDER and leaves it held', async () => {
    const pool = makePool();
    const m = new SharedMutex({ name: 'held_by_worker' });
    const holder = spawn({ scenario: 'hold', mutex: m.handle, pool: pool.handle });
    const h = await holder.next();
    expect(() => m.unlock()).toThrow(expect.objectContaining({ code: 'ERR_NOT_HOLDER' }));
    expect(m.holder).toBe(h.task);

    // And the other way round: the main thread holds it, a worker unlocks.
    holder.post('release');
    await holder.next();
    m.lock(pool);
    const other = spawn({ scenario: 'unlock', mutex: m.handle });
    expect(await other.next()).toMatchObject({ ok: false, code: 'ERR_NOT_HOLDER' });
    expect(m.holder).toBe(pool.taskId);
    m.unlock();
  });
});
