import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { setImmediate as immediate, setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  onWarning,
  resetWarnings,
  warn,
  WARN_RATELIMIT_INTERVAL_MS,
  type Warning,
  WARNING_CODES,
  warnOnce,
} from '../../../src/mm/stats/warn.js';
import { transpileSrc } from '../../fixtures/transpile-src.js';

const NOWARN = 0x2000;
const KERNEL = 0xcc0;

/** Warnings published on one kind's channel; `off` unsubscribes. */
function listen(kind: string): { got: Warning[]; off: () => void } {
  const got: Warning[] = [];
  const fn = (msg: unknown): void => void got.push(msg as Warning);
  subscribe(`nofail:${kind}`, fn);
  return { got, off: () => unsubscribe(`nofail:${kind}`, fn) };
}

let emitWarning: ReturnType<typeof vi.spyOn>;
let clock = 0;

beforeEach(() => {
  resetWarnings();
  clock = 1_000_000;
  vi.spyOn(performance, 'now').mockImplementation(() => clock);
  // Captured, so the suite does not print every warning it raises.
  emitWarning = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
});
afterEach(async () => {
  // Let what a test queued go out before its spies are removed.
  await immediate();
  vi.restoreAllMocks();
});

describe('warn', () => {
  it('has one stable code per kind', () => {
    expect(WARNING_CODES).toEqual({
      'alloc-failure': 'NOFAIL_ALLOC_FAILURE',
      'alloc-stall': 'NOFAIL_ALLOC_STALL',
      'gfp-misuse': 'NOFAIL_GFP_MISUSE',
      'alloc-deadlock': 'NOFAIL_ALLOC_DEADLOCK',
      'oom-kill': 'NOFAIL_OOM_KILL',
      livelock: 'NOFAIL_LIVELOCK',
      'use-after-free': 'NOFAIL_USE_AFTER_FREE',
      lockdep: 'NOFAIL_LOCKDEP',
    });
    expect(Object.isFrozen(WARNING_CODES)).toBe(true);
  });

  it('publishes on diagnostics_channel and emitWarning, never synchronously', async () => {
    const l = listen('alloc-failure');
    expect(warn('alloc-failure', 'page allocation failure: order:2, mode:0xcc0(GFP_KERNEL)', { order: 2, gfp: KERNEL })).toBe(true);
    expect(l.got).toHaveLength(0);
    expect(emitWarning).not.toHaveBeenCalled();
    await immediate();
    l.off();
    expect(l.got).toHaveLength(1);
    expect(l.got[0]).toMatchObject({
      code: 'NOFAIL_ALLOC_FAILURE',
      kind: 'alloc-failure',
      message: 'page allocation failure: order:2, mode:0xcc0(GFP_KERNEL)',
      order: 2,
      gfp: KERNEL,
      threadId: 0,
    });
    expect(typeof l.got[0]!.time).toBe('number');
    expect(emitWarning).toHaveBeenCalledTimes(1);
    expect(emitWarning).toHaveBeenCalledWith('page allocation failure: order:2, mode:0xcc0(GFP_KERNEL)', {
      code: 'NOFAIL_ALLOC_FAILURE',
      detail: 'order: 2\ngfp: 3264',
    });
  });

  it('is silenced by __GFP_NOWARN', async () => {
    const l = listen('alloc-failure');
    expect(warn('alloc-failure', 'page allocation failure: order:0', {}, { gfp: KERNEL | NOWARN })).toBe(false);
    await immediate();
    l.off();
    expect(l.got).toHaveLength(0);
    expect(emitWarning).not.toHaveBeenCalled();
    // The stall report strips NOWARN itself (warn_alloc(gfp & ~__GFP_NOWARN)).
    expect(warn('alloc-stall', 'page allocation stalls for 10000ms, order:0', {}, { gfp: (KERNEL | NOWARN) & ~NOWARN })).toBe(true);
  });

  it('is rate-limited per kind like ___ratelimit: 10 s, burst 1, suppressed count on the next', async () => {
    const l = listen('alloc-failure');
    expect(warn('alloc-failure', 'first')).toBe(true);
    clock += 1000;
    expect(warn('alloc-failure', 'second')).toBe(false);
    expect(warn('alloc-failure', 'third')).toBe(false);
    // Another kind has its own window.
    expect(warn('alloc-stall', 'stall')).toBe(true);
    // Exactly at begin + interval the window has not passed yet (time_is_before_jiffies).
    clock = 1_000_000 + WARN_RATELIMIT_INTERVAL_MS;
    expect(warn('alloc-failure', 'fourth')).toBe(false);
    clock += 1;
    expect(warn('alloc-failure', 'fifth')).toBe(true);
    clock += 1;
    expect(warn('alloc-failure', 'sixth')).toBe(false);
    // ratelimit: false bypasses the window, and does not eat the count.
    expect(warn('alloc-failure', 'forced', {}, { ratelimit: false })).toBe(true);
    await immediate();
    l.off();
    expect(l.got.map((w) => [w.message, w.suppressed])).toEqual([
      ['first', undefined],
      ['fifth', 3],
      ['forced', undefined],
    ]);
    expect(emitWarning).toHaveBeenCalledWith('fifth', { code: 'NOFAIL_ALLOC_FAILURE', detail: '3 callbacks suppressed' });
    // The next window reports the one held back since.
    clock += WARN_RATELIMIT_INTERVAL_MS + 1;
    const l2 = listen('alloc-failure');
    expect(warn('alloc-failure', 'seventh')).toBe(true);
    await immediate();
    l2.off();
    expect(l2.got[0]!.suppressed).toBe(1);
  });

  it('warnOnce warns once per key, whatever the rate limit says', async () => {
    const l = listen('gfp-misuse');
    expect(warn('gfp-misuse', 'ordinary')).toBe(true);
    expect(warnOnce('nofail-order', 'gfp-misuse', '__GFP_NOFAIL with order:2 > 1', { order: 2 })).toBe(true);
    expect(warnOnce('nofail-order', 'gfp-misuse', '__GFP_NOFAIL with order:2 > 1', { order: 2 })).toBe(false);
    expect(warnOnce('nofail-noreclaim', 'gfp-misuse', '__GFP_NOFAIL without __GFP_DIRECT_RECLAIM')).toBe(true);
    await immediate();
    l.off();
    expect(l.got.map((w) => w.message)).toEqual([
      'ordinary',
      '__GFP_NOFAIL with order:2 > 1',
      '__GFP_NOFAIL without __GFP_DIRECT_RECLAIM',
    ]);
    resetWarnings();
    expect(warnOnce('nofail-order', 'gfp-misuse', 'again')).toBe(true);
  });

  it('never throws into the caller: not for subscribers, not for details that cannot be cloned', async () => {
    const bad = (): void => {
      throw new Error('subscriber bug');
    };
    subscribe('nofail:livelock', bad);
    const errors: unknown[] = [];
    const onUncaught = (e: unknown): void => void errors.push(e);
    // diagnostics_channel reports a subscriber's exception on process.nextTick.
    const listeners = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    process.on('uncaughtException', onUncaught);
    try {
      expect(warn('livelock', 'no progress', { fn: () => 1, sym: Symbol('s'), big: 1n })).toBe(true);
      await immediate();
      await sleep(5);
    } finally {
      unsubscribe('nofail:livelock', bad);
      process.off('uncaughtException', onUncaught);
      for (const l of listeners) process.on('uncaughtException', l);
    }
    expect(errors).toHaveLength(1);
    expect(emitWarning).toHaveBeenCalledTimes(1);
    expect(emitWarning.mock.calls[0]![1]).toMatchObject({ code: 'NOFAIL_LIVELOCK', detail: expect.stringContaining('big: 1') });
  });

  it('rejects an unknown kind', () => {
    expect(() => warn('oops' as never, 'x')).toThrowError(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => onWarning(42 as never)).toThrowError(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  it('emits a real process warning with the code and detail', async () => {
    emitWarning.mockRestore();
    // Node's own listener prints warnings; keep the test output clean.
    const printers = process.listeners('warning');
    process.removeAllListeners('warning');
    const seen = new Promise<Error & { code?: string; detail?: string }>((resolve) => process.once('warning', resolve));
    warn('oom-kill', 'Out of memory: Killed task 3', { pid: 3, adj: 0 });
    const w = await seen.finally(() => {
      for (const l of printers) process.on('warning', l);
    });
    expect(w.message).toBe('Out of memory: Killed task 3');
    expect(w.code).toBe('NOFAIL_OOM_KILL');
    expect(w.detail).toBe('pid: 3\nadj: 0');
  });
});

describe('onWarning', () => {
  it('delivers this thread’s warnings once, asynchronously, and stops on unsubscribe', async () => {
    const got: Warning[] = [];
    const off = onWarning((w) => got.push(w));
    warn('alloc-deadlock', 'possible memory allocation deadlock size 8192 in test (mode:0xc40)');
    warn('oom-kill', 'Out of memory');
    expect(got).toHaveLength(0);
    // Give a broadcast copy every chance to arrive twice.
    await sleep(50);
    expect(got.map((w) => w.code)).toEqual(['NOFAIL_ALLOC_DEADLOCK', 'NOFAIL_OOM_KILL']);
    off();
    off();
    warn('livelock', 'after');
    await sleep(20);
    expect(got).toHaveLength(2);
  });

  it('delivers a worker’s warning while that worker is still blocked in Atomics.wait', async () => {
    const { url: warnUrl, remove } = transpileSrc('mm/stats/warn');
    const sab = new SharedArrayBuffer(4);
    const word = new Int32Array(sab);
    const got: Warning[] = [];
    let worker: Worker | undefined;
    let workerThreadId = -1; // worker.threadId reads -1 once it has exited
    const off = onWarning((w) => {
      got.push(w);
      if (w.threadId === workerThreadId) {
        // The copy came without the worker's event loop, which has not run
        // since warn(). Wake the worker once it is asleep: notify() says how
        // many waiters it woke, so poll until it wakes this one (a word
        // stored before the worker waits would leave it 'not-equal').
        const wake = (): void => {
          if (Atomics.notify(word, 0) === 0) setTimeout(wake, 5).unref();
        };
        wake();
      }
    });
    try {
      worker = new Worker(new URL('../../fixtures/warn-worker.mjs', import.meta.url), {
        workerData: { warnUrl, sab },
        execArgv: ['--no-warnings'],
      });
      workerThreadId = worker.threadId;
      const reply = await new Promise<{ emitted: boolean; result: string }>((resolve, reject) => {
        worker!.once('message', resolve);
        worker!.once('error', reject);
      });
      // 'ok': woken by the main thread, which had the warning while the worker slept.
      expect(reply).toEqual({ emitted: true, result: 'ok' });
      await sleep(20);
      const fromWorker = got.filter((w) => w.threadId === workerThreadId);
      expect(fromWorker).toHaveLength(1);
      expect(fromWorker[0]).toMatchObject({
        code: 'NOFAIL_ALLOC_STALL',
        kind: 'alloc-stall',
        message: 'page allocation stalls for 10000ms, order:0',
        order: 0,
        gfp: KERNEL,
      });
    } finally {
      off();
      await worker?.terminate();
      remove();
    }
  });
});
