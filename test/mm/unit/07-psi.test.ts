import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import {
  avgToPercent,
  calcAvgs,
  calcLoad,
  calcLoadN,
  EXP_10s,
  EXP_300s,
  EXP_60s,
  FIXED_1,
  fixedPowerInt,
  Psi,
  PSI_BYTES,
  type PsiEvent,
} from '../../../src/mm/stats/psi.js';
import { transpileSrc } from '../../fixtures/transpile-src.js';
import { until } from '../../fixtures/workers.js';

// Slots of the region that tests reach into (documented in psi.ts).
const NR_STALLED_WORD = 3;
const AVG_SOME_WORD = 4;
const AVG_NEXT_UPDATE_SLOT = 11;
const AVG_LAST_UPDATE_SLOT = 12;
const SEC = 1_000_000_000n;

describe('PSI arithmetic (calc_avgs of kernel/sched/psi.c)', () => {
  // Expected values computed with the kernel's C expressions, integer for integer.
  it('calc_load decays in fixed point and rounds up while rising', () => {
    expect([FIXED_1, EXP_10s, EXP_60s, EXP_300s]).toEqual([2048, 1677, 1981, 2034]);
    expect(calcLoad(0, EXP_10s, 100 * FIXED_1)).toBe(37100);
    expect(calcLoad(0, EXP_60s, 100 * FIXED_1)).toBe(6700);
    expect(calcLoad(0, EXP_300s, 100 * FIXED_1)).toBe(1400);
    expect(calcLoad(37100, EXP_10s, 0)).toBe(30379);
    // At 100 % the average stays at 100 %, not one unit below.
    expect(calcLoad(100 * FIXED_1, EXP_10s, 100 * FIXED_1)).toBe(100 * FIXED_1);
  });

  it('fixed_power_int rounds each step as the kernel does', () => {
    expect([0, 1, 2, 3, 4, 5].map((n) => fixedPowerInt(EXP_10s, 11, n))).toEqual([2048, 1677, 1373, 1124, 920, 753]);
    expect(fixedPowerInt(EXP_300s, 11, 150)).toBe(727);
    expect(fixedPowerInt(EXP_60s, 11, 30)).toBe(756);
    expect(calcLoadN(37100, EXP_10s, 0, 1)).toBe(calcLoad(37100, EXP_10s, 0));
  });

  it('calc_avgs samples whole percent, and decays missed periods with zero first', () => {
    const avg = [0, 0, 0];
    calcAvgs(avg, 0, 2_000_000_000, 2_000_000_000);
    expect(avg).toEqual([37100, 6700, 1400]);
    expect(avg.map(avgToPercent)).toEqual([18.11, 3.27, 0.68]);
    calcAvgs(avg, 0, 500_000_000, 2_000_000_000);
    expect(avg).toEqual([39655, 8156, 1741]);
    const idle = [...avg];
    calcAvgs(idle, 3, 0, 2_000_000_000);
    expect(idle).toEqual([17820, 7137, 1693]);
    expect(idle.map(avgToPercent)).toEqual([8.7, 3.48, 0.82]);
    // 99.99999995 % is 99 %: div_u64(time * 100, period) truncates.
    const late = [...avg];
    calcAvgs(late, 3, 1_999_999_999, 2_000_000_000);
    expect(late).toEqual([54550, 13771, 3080]);
    const full = [0, 0, 0];
    for (let i = 0; i < 500; i++) calcAvgs(full, 0, 1, 1);
    expect(full.map(avgToPercent)).toEqual([100, 100, 96.79]);
  });
});

describe('Psi: stall accounting', () => {
  it('checks its region', () => {
    const sab = new SharedArrayBuffer(PSI_BYTES + 8);
    expect(() => new Psi(new ArrayBuffer(256) as never, 0)).toThrowError(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => new Psi(sab, 4)).toThrowError(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new Psi(sab, 16)).toThrowError(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new Psi(sab, 8)).not.toThrow();
  });

  it('counts `some` while one task stalls, `full` only while every active task does; nesting counts once', async () => {
    const sab = new SharedArrayBuffer(512);
    const a = new Psi(sab, 256);
    const b = new Psi(sab, 256);
    const observer = new Psi(sab, 256); // not a task
    a.taskStart();
    b.taskStart();
    const s0 = observer.snapshot();
    expect(s0.some.total).toBe(0);
    const t0 = performance.now();
    a.stallEnter();
    a.stallEnter();
    await sleep(150);
    a.stallLeave(); // still inside the outer stall
    await sleep(150);
    a.stallLeave();
    a.stallLeave(); // unmatched: nothing
    const s1 = observer.snapshot();
    const wallUs = (performance.now() - t0) * 1000;
    expect(s1.some.total).toBeGreaterThan(270_000);
    // Never more stall than wall time (the same monotonic clock; 1 ms for rounding).
    expect(s1.some.total).toBeLessThanOrEqual(wallUs + 1000);
    expect(s1.full.total).toBe(0);
    await sleep(50);
    expect(observer.snapshot().some.total).toBe(s1.some.total);

    a.stallEnter();
    b.stallEnter();
    await sleep(200);
    a.stallLeave();
    b.stallLeave();
    const s2 = observer.snapshot();
    expect(s2.full.total).toBeGreaterThan(180_000);
    expect(s2.some.total - s1.some.total).toBeGreaterThanOrEqual(s2.full.total);
    a.taskStop();
    b.taskStop();
  });

  it('ends a task’s stall when the task stops', async () => {
    const sab = new SharedArrayBuffer(PSI_BYTES);
    const a = new Psi(sab, 0);
    a.taskStart();
    a.stallEnter();
    a.taskStop();
    const t = a.snapshot().some.total;
    await sleep(30);
    expect(a.snapshot().some.total).toBe(t);
  });

  it('samples averages when due, and decays missed periods as update_averages', async () => {
    const sab = new SharedArrayBuffer(PSI_BYTES);
    const i32 = new Int32Array(sab);
    const i64 = new BigInt64Array(sab);
    const p = new Psi(sab, 0);
    p.taskStart();
    p.stallEnter();
    await sleep(300);
    p.stallLeave();
    expect(p.snapshot().some.avg10).toBe(0); // not due for 2 s
    // Make the first sample due now: ~300 ms stalled out of the ~300 ms since creation.
    i64[AVG_NEXT_UPDATE_SLOT] = process.hrtime.bigint();
    const due = i64[AVG_NEXT_UPDATE_SLOT]!;
    const s = p.snapshot();
    expect(s.some.avg10).toBeGreaterThan(14); // 80 %..100 % of a period: 14.49..18.11
    expect(s.some.avg10).toBeLessThanOrEqual(18.11);
    expect(s.some.avg60).toBeGreaterThan(2.5);
    expect(s.some.avg300).toBeGreaterThan(0.5);
    // The only task stalled: full is some.
    expect(s.full).toEqual(s.some);
    // The next sample is due one period after the one just taken.
    expect(i64[AVG_NEXT_UPDATE_SLOT]).toBe(due + 2n * SEC);
    expect(p.snapshot()).toEqual(s);

    // Sampling 5 s late, with no stall since: two missed periods decay with
    // zero, then a zero sample; exact.
    const before = [0, 1, 2].map((w) => i32[AVG_SOME_WORD + w]!);
    const expected = [...before];
    calcAvgs(expected, 2, 0, 1);
    const now = process.hrtime.bigint();
    i64[AVG_LAST_UPDATE_SLOT] = now - 7n * SEC;
    i64[AVG_NEXT_UPDATE_SLOT] = now - 5n * SEC;
    p.snapshot();
    expect([0, 1, 2].map((w) => i32[AVG_SOME_WORD + w]!)).toEqual(expected);
    expect(i64[AVG_NEXT_UPDATE_SLOT]).toBe(now + 1n * SEC);
    p.taskStop();
  });

  it('startSampler() samples on time with no one touching the pool', async () => {
    const sab = new SharedArrayBuffer(PSI_BYTES);
    const i32 = new Int32Array(sab);
    const i64 = new BigInt64Array(sab);
    const p = new Psi(sab, 0);
    p.taskStart();
    p.stallEnter();
    i64[AVG_NEXT_UPDATE_SLOT] = process.hrtime.bigint() + 50_000_000n; // due in 50 ms
    const stop = p.startSampler();
    await sleep(150);
    // Sampled by the timer: the averages moved though nothing called snapshot().
    expect(i32[AVG_SOME_WORD]).toBeGreaterThan(0);
    stop();
    const next = i64[AVG_NEXT_UPDATE_SLOT];
    p.stallLeave();
    p.taskStop();
    expect(next).toBeGreaterThan(process.hrtime.bigint());
  });

  it('never waits long on a lock whose holder vanished: without a host it goes on without the lock', () => {
    const sab = new SharedArrayBuffer(PSI_BYTES);
    const p = new Psi(sab, 0);
    const words = new Int32Array(sab);
    Atomics.store(words, 0, 5); // task 5 died inside the lock; a Psi without a host cannot tell
    const t0 = performance.now();
    p.taskStart();
    p.stallEnter();
    const s = p.snapshot();
    p.stallLeave();
    // Each call spins at most 0.1 ms on the main thread (psi.ts MAIN_SPIN_MS): far below the 1 s steal timer this replaced.
    expect(performance.now() - t0).toBeLessThan(500);
    expect(s.some.total).toBe(0);
    // The counts changed all the same (atomically), and the holder kept its lock: only a host can say it is gone
    // (test/mm/workers/74-dead-holder.test.ts).
    expect(Atomics.load(words, 2)).toBe(1); // NR_ACTIVE
    expect(Atomics.load(words, 3)).toBe(0); // NR_STALLED
    expect(Atomics.load(words, 0)).toBe(5);
  });
});

describe('Psi: triggers', () => {
  it('validates the trigger as the kernel does', () => {
    const p = new Psi(new SharedArrayBuffer(PSI_BYTES), 0);
    const cb = (): void => {};
    const err = (opts: unknown, code: string) =>
      expect(() => p.trigger(opts as never, cb)).toThrowError(expect.objectContaining({ code }));
    err({ kind: 'some', stallUs: 1000, windowUs: 499_999 }, 'ERR_OUT_OF_RANGE');
    err({ kind: 'some', stallUs: 1000, windowUs: 10_000_001 }, 'ERR_OUT_OF_RANGE');
    err({ kind: 'some', stallUs: 0, windowUs: 500_000 }, 'ERR_OUT_OF_RANGE');
    err({ kind: 'some', stallUs: 500_001, windowUs: 500_000 }, 'ERR_OUT_OF_RANGE');
    err({ kind: 'some', stallUs: 1.5, windowUs: 500_000 }, 'ERR_OUT_OF_RANGE');
    err({ kind: 'partial', stallUs: 1000, windowUs: 500_000 }, 'ERR_INVALID_ARG_TYPE');
    err({ kind: 'some', stallUs: '1000', windowUs: 500_000 }, 'ERR_INVALID_ARG_TYPE');
    err(null, 'ERR_INVALID_ARG_TYPE');
    expect(() => p.trigger({ kind: 'some', stallUs: 1000, windowUs: 500_000 }, null as never)).toThrowError(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
    p.trigger({ kind: 'full', stallUs: 500_000, windowUs: 500_000 }, cb)();
    p.trigger({ kind: 'some', stallUs: 1, windowUs: 10_000_000 }, cb)();
  });

  it('fires when stall grows past the threshold in the window, at most once per window', async () => {
    const sab = new SharedArrayBuffer(PSI_BYTES);
    const a = new Psi(sab, 0);
    const b = new Psi(sab, 0);
    a.taskStart();
    b.taskStart();
    const some: { e: PsiEvent; t: number }[] = [];
    const full: PsiEvent[] = [];
    const offSome = a.trigger({ kind: 'some', stallUs: 100_000, windowUs: 500_000 }, (e) => some.push({ e, t: performance.now() }));
    const offFull = a.trigger({ kind: 'full', stallUs: 100_000, windowUs: 500_000 }, (e) => full.push(e));
    await sleep(150);
    expect(some).toHaveLength(0); // no stall, no event
    const t0 = performance.now();
    a.stallEnter();
    await sleep(1300);
    a.stallLeave();
    await sleep(100);
    offSome();
    offFull();
    const activeMs = performance.now() - t0;
    const n = some.length;
    // Events at least 500 ms apart, all between stallEnter() and the
    // removal: 1.3 s of stall gives 3 on time, and however late the timers
    // ran, no more than the measured span allows.
    expect(n).toBeGreaterThanOrEqual(1);
    expect(n).toBeLessThanOrEqual(Math.floor(activeMs / 500) + 1);
    // The callback runs right after the poll reads the clock; 50 ms of slack for that.
    for (let i = 1; i < n; i++) expect(some[i]!.t - some[i - 1]!.t).toBeGreaterThanOrEqual(450);
    for (const { e } of some) {
      expect(e).toMatchObject({ kind: 'some', stallUs: 100_000, windowUs: 500_000 });
      expect(e.growthUs).toBeGreaterThanOrEqual(100_000);
    }
    // b never stalled: no `full`.
    expect(full).toHaveLength(0);
    await sleep(100);
    expect(some).toHaveLength(n); // removed
  });
});

describe('Psi: shared by worker threads', () => {
  it('one worker stalling raises `some`; both stalling raises `full`', async () => {
    const { url: psiUrl, remove } = transpileSrc('mm/stats/psi');
    const sab = new SharedArrayBuffer(512);
    const observer = new Psi(sab, 256); // the main thread watches; it is not a task
    const url = new URL('../../fixtures/psi-worker.mjs', import.meta.url);
    const workers = [0, 1].map(() => new Worker(url, { workerData: { psiUrl, sab, byteOffset: 256 } }));
    const reply = (w: Worker): Promise<unknown> =>
      new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
    const call = (w: Worker, msg: object): Promise<unknown> => {
      const r = reply(w);
      w.postMessage(msg);
      return r;
    };
    try {
      await Promise.all(workers.map(reply)); // 'ready': both are tasks
      const [w1, w2] = workers as [Worker, Worker];
      const s0 = observer.snapshot();
      await call(w1, { cmd: 'stall', ms: 300 });
      const s1 = observer.snapshot();
      expect(s1.some.total - s0.some.total).toBeGreaterThan(270_000);
      expect(s1.full.total - s0.full.total).toBe(0);
      // Both stalled at once, for sure: each stalls until the gate opens,
      // which it does 300 ms after both are seen stalled.
      const gate = new Int32Array(new SharedArrayBuffer(4));
      const nrStalled = new Int32Array(sab, 256, 4);
      const both = Promise.all([w1, w2].map((w) => call(w, { cmd: 'stall', ms: 30_000, gate: gate.buffer })));
      await until(() => Atomics.load(nrStalled, NR_STALLED_WORD) === 2);
      const t0 = performance.now();
      await sleep(300);
      const bothUs = (performance.now() - t0) * 1000;
      Atomics.store(gate, 0, 1);
      Atomics.notify(gate, 0);
      await both;
      const s2 = observer.snapshot();
      expect(s2.some.total - s1.some.total).toBeGreaterThan(270_000);
      // 1 ms for rounding between the two readings of the same clock.
      expect(s2.full.total - s1.full.total).toBeGreaterThanOrEqual(bothUs - 1000);
      await Promise.all(workers.map((w) => call(w, { cmd: 'stop' })));
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
      remove();
    }
  });
});
