/**
 * Every lock the TypeScript side keeps in shared memory survives its holder
 * (issue 11 §5): a worker stops inside the critical section of the OOM
 * lock, the PSI lock, a mempool's lock or a reclaim mailbox (a test-only
 * pause point, tasks.ts lockTestPause) and is terminated there; then
 * another thread goes through the same lock, taken over from the dead
 * holder at once.
 *
 * Bounds: the bar is 100 ms after the holder's exit. What is timed
 * is a takeover with no timer in it, so the bound is 100 ms or 3x the same
 * step measured without a dead holder in the same run, whichever is more —
 * and never as much as the 1 s that PSI's old steal timer took (a slow
 * machine cannot make a timer-free takeover look like one).
 * Times are process.hrtime in ms: one clock for every thread.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { GFP, Mempool, Pool } from '../../../src/index.js';
import { PSI_BYTE_OFFSET } from '../../../src/binding/control.js';
import { attachmentOf } from '../../../src/mm/pool.js';
import { lockHolder } from '../../../src/mm/task-lock.js';
import { takeAll } from '../../fixtures/pool.js';
import { TestWorker, until } from '../../fixtures/workers.js';

const FIXTURE = './dead-holder-worker.mjs';
/** The bar. */
const BOUND_MS = 100;
/** What PSI's old steal timer waited: a bound at or past it could not tell a takeover from a timer. */
const STEAL_TIMER_MS = 1000;

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const bound = (baselineMs: number) => Math.min(STEAL_TIMER_MS * 0.9, Math.max(BOUND_MS, 3 * baselineMs));

const workers: TestWorker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

function start(workerData: Record<string, unknown>): TestWorker {
  const w = new TestWorker(FIXTURE, workerData);
  workers.push(w);
  return w;
}

/** Starts a worker that stops inside `scenario`'s lock; resolves with its task id once it is there. */
async function pausedHolder(workerData: Record<string, unknown>): Promise<{ w: TestWorker; task: number }> {
  const w = start(workerData);
  const m = await w.next();
  expect(m.paused).toBe(workerData.scenario);
  return { w, task: m.task };
}

/** terminate(); the time of its exit event. */
async function terminateAt(w: TestWorker): Promise<number> {
  let at = 0;
  w.worker.once('exit', () => (at = nowMs()));
  await w.terminate();
  return at;
}

describe('a worker terminated inside a task lock', () => {
  it('PSI lock: the main thread takes it over at once, and never spins long on a live holder', async () => {
    const pool = Pool.create({ size: 64 * 4096, pcp: false });
    const psi = attachmentOf(pool).psi;
    const lockWord = () => Atomics.load(new Int32Array(pool.handle.control), PSI_BYTE_OFFSET / 4);
    let baseline = 0;
    for (let i = 0; i < 5; i++) {
      const t = nowMs();
      psi.snapshot();
      baseline = Math.max(baseline, nowMs() - t);
    }

    const dead = await pausedHolder({ handle: pool.handle, scenario: 'psi' });
    const exitAt = await terminateAt(dead.w);
    psi.snapshot();
    expect(nowMs() - exitAt).toBeLessThan(bound(baseline));
    // Taken over and released, not read around the dead holder.
    expect(lockHolder(lockWord())).toBe(0);

    // A live holder that does not let go (only a test can pause one): the
    // main thread spins a bounded time, then reads without the lock.
    const live = await pausedHolder({ handle: pool.handle, scenario: 'psi' });
    const t = nowMs();
    const snap = psi.snapshot();
    expect(nowMs() - t).toBeLessThan(bound(baseline));
    expect(snap.some.total).toBeGreaterThanOrEqual(0);
    expect(lockHolder(lockWord())).toBe(live.task);
    await live.w.terminate();
    psi.snapshot();
    expect(lockHolder(lockWord())).toBe(0);
    pool.close();
  });

  it('mempool lock: a blocked worker and the main thread take it over at once; the main thread never waits on it', async () => {
    const pool = Pool.create({ size: 64 * 4096, watermarks: { min: 0, low: 0, high: 0 }, pcp: false });
    const mp = Mempool.create(pool, { minNr: 4 });
    const lockWord = () => Atomics.load(new Int32Array(mp.handle.state), 0);
    const hog = takeAll(pool, GFP.NOWAIT | GFP.HIGH | GFP.MEMALLOC);
    expect(pool.stats().freePages).toBe(0);

    // The baseline: a worker's allocation from the reserve, asked by message.
    const probe = start({ handle: pool.handle, scenario: 'probe', mempool: mp.handle });
    await probe.next();
    let t = nowMs();
    probe.post('alloc');
    expect(await probe.next()).toEqual({ trying: true });
    const first = await probe.next();
    expect(first.got).toBe(true);
    const baseline = first.at - t;
    probe.post('free');
    await probe.next();
    expect(mp.stats().currNr).toBe(4);

    // A worker blocked on the lock while its holder dies goes on at once.
    const dead = await pausedHolder({ handle: pool.handle, scenario: 'mempool', mempool: mp.handle });
    probe.post('alloc');
    await probe.next(); // { trying }: it now waits for the lock
    const exitAt = await terminateAt(dead.w);
    const got = await probe.next(5000);
    expect(got.got).toBe(true);
    expect(got.at - exitAt).toBeLessThan(bound(baseline));
    probe.post('free');
    await probe.next();

    // A live holder: the main thread's sync calls do not wait for it.
    const held = mp.alloc(GFP.KERNEL)!;
    expect(mp.stats().currNr).toBe(3);
    const live = await pausedHolder({ handle: pool.handle, scenario: 'mempool', mempool: mp.handle });
    expect(lockHolder(lockWord())).toBe(live.task);
    t = nowMs();
    expect(() => mp.alloc(GFP.KERNEL)).toThrowError(expect.objectContaining({ code: 'ERR_WOULD_BLOCK' }));
    expect(() => mp.destroy()).toThrowError(expect.objectContaining({ code: 'ERR_WOULD_BLOCK' }));
    // free() cannot refill the reserve now: the element goes to the pool.
    const returned = mp.stats().returned;
    mp.free(held);
    expect(mp.stats().returned).toBe(returned + 1);
    expect(nowMs() - t).toBeLessThan(bound(baseline));
    hog.push(pool.alloc(GFP.NOWAIT | GFP.HIGH | GFP.MEMALLOC));
    // allocAsync awaits the lock, and takes it over when the holder dies.
    const pending = mp.allocAsync(GFP.KERNEL);
    const liveExitAt = await terminateAt(live.w);
    const element = await pending;
    expect(element).not.toBeNull();
    expect(nowMs() - liveExitAt).toBeLessThan(bound(baseline));
    expect(lockHolder(lockWord())).toBe(0);

    mp.free(element!);
    mp.free(hog.pop()!);
    expect(mp.stats().currNr).toBe(4);
    mp.destroy();
    pool.freeBulk(hog);
    expect(pool.stats().freePages).toBe(pool.totalPages);
    pool.checkInvariants();
  });

  /** A pool whose OOM kills one of two idle victims; the main thread's own pages are exempt. */
  async function oomPool() {
    const pool = Pool.create({ size: 256 * 4096, watermarks: { min: 4, low: 8, high: 12 }, pcp: false, oom: true });
    const victims: TestWorker[] = [];
    for (const name of ['victim-1', 'victim-2']) {
      const v = new TestWorker('../fixtures/oom-worker.mjs', { handle: pool.handle, name, pages: 60 });
      workers.push(v);
      expect((await v.next()).held).toBe(60);
      victims.push(v);
    }
    const mine = takeAll(pool, GFP.NOWAIT | GFP.HIGH | GFP.MEMALLOC);
    /** Allocates on the full pool: an OOM kill; the time from `from` until the kill is seen. */
    const killAfter = async (from: number): Promise<number> => {
      const kills = pool.stats().vmstat.oom_kill;
      const pending = pool.allocAsync(GFP.KERNEL, 0, { timeoutMs: 10_000 });
      pending.catch(() => {}); // awaited below; a failed wait must not also be an unhandled rejection
      await until(() => pool.stats().vmstat.oom_kill > kills, 10_000);
      const elapsed = nowMs() - from;
      mine.push(await pending);
      // The victim's pages came back: take them, so that the pool is full again.
      mine.push(...takeAll(pool, GFP.NOWAIT | GFP.HIGH | GFP.MEMALLOC));
      return elapsed;
    };
    return { pool, victims, mine, killAfter };
  }

  it('OOM lock: the next OOM takes it over at once and kills', async () => {
    const { pool, mine, killAfter } = await oomPool();
    const baseline = await killAfter(nowMs());
    const dead = await pausedHolder({ handle: pool.handle, scenario: 'oom' });
    expect(lockHolder(Atomics.load(attachmentOf(pool).ctl, 20))).toBe(dead.task);
    const exitAt = await terminateAt(dead.w);
    expect(await killAfter(exitAt)).toBeLessThan(bound(baseline));
    pool.freeBulk(mine);
    pool.checkInvariants();
  });

  it('OOM lock: a dead holder whose task id is reused by a live task does not keep it', async () => {
    const { pool, mine, killAfter } = await oomPool();
    const baseline = await killAfter(nowMs());
    const dead = await pausedHolder({ handle: pool.handle, scenario: 'oom' });
    await dead.w.terminate();
    // The ledger hands out fresh ids up to the task table's 4096, then the
    // one retired longest ago: the dead holder's.
    let reused;
    for (let i = 0; i < 20_000 && reused === undefined; i++) {
      const task = pool.registerTask({ name: 'filler' });
      if (task.id === dead.task) reused = task;
      else task.unregister();
    }
    expect(reused?.id).toBe(dead.task);
    expect(await killAfter(nowMs())).toBeLessThan(bound(baseline));
    reused!.unregister();
    pool.freeBulk(mine);
    pool.checkInvariants();
  });

  it("reclaim mailbox: the next requester takes it over at once and the owner's shrinker answers", async () => {
    const pool = Pool.create({ size: 256 * 4096, watermarks: { min: 0, low: 0, high: 0 }, pcp: false });
    const owner = start({ handle: pool.handle, scenario: 'owner', pages: 120 });
    expect((await owner.next()).ready).toBe(true);
    const mine = takeAll(pool, GFP.NOWAIT | GFP.HIGH | GFP.MEMALLOC);
    /** Allocates on the full pool: the owner's shrinker is asked; the time from `from` to its scan. */
    const scanAfter = async (from: number): Promise<number> => {
      owner.post('arm');
      expect(await owner.next()).toEqual({ armed: true });
      const pending = pool.allocAsync(GFP.KERNEL, 0, { timeoutMs: 10_000 });
      pending.catch(() => {}); // awaited below; a failed wait must not also be an unhandled rejection
      const scan = await owner.next(10_000);
      expect(scan.scanned).toBeGreaterThan(0);
      mine.push(await pending);
      mine.push(...takeAll(pool, GFP.NOWAIT | GFP.HIGH | GFP.MEMALLOC));
      return scan.at - from;
    };
    const baseline = await scanAfter(nowMs());
    const dead = await pausedHolder({ handle: pool.handle, scenario: 'mailbox' });
    const exitAt = await terminateAt(dead.w);
    expect(await scanAfter(exitAt)).toBeLessThan(bound(baseline));
    pool.freeBulk(mine);
  });
});
