import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { setImmediate as immediate } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FaultInjector } from '../../../src/mm/debug/faultinject.js';
import { resetWarnings, type Warning } from '../../../src/mm/stats/warn.js';

const GFP = {
  DIRECT_RECLAIM: 0x400,
  NOWARN: 0x2000,
  NOFAIL: 0x8000,
  KERNEL: 0xcc0,
  ATOMIC: 0x820,
  NOWAIT: 0x2800,
} as const;

/** shouldFail() over `n` calls, as a string of 'x' (failed) and '.' (passed). */
function run(fi: FaultInjector, n: number, gfp: number = GFP.ATOMIC, order = 1): string {
  let s = '';
  for (let i = 0; i < n; i++) s += fi.shouldFail(gfp, order) ? 'x' : '.';
  return s;
}

beforeEach(() => {
  resetWarnings();
  vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
});
afterEach(async () => {
  await immediate();
  vi.restoreAllMocks();
});

describe('FaultInjector: eligibility (should_fail_alloc_page)', () => {
  it('fails nothing with the defaults: probability 0', () => {
    const fi = new FaultInjector();
    expect(run(fi, 50)).toBe('.'.repeat(50));
    expect(fi).toMatchObject({ probability: 0, interval: 1, times: -1, space: 0, minOrder: 1, ignoreGfpWait: true, failNth: 0, verbose: 2 });
    expect(Number.isInteger(fi.seed) && fi.seed >= 0 && fi.seed <= 0xffffffff).toBe(true);
  });

  it('never fails __GFP_NOFAIL, not even the fail-nth call', () => {
    const fi = new FaultInjector({ probability: 100, failNth: 1, ignoreGfpWait: false, minOrder: 0, verbose: 0 });
    expect(run(fi, 10, GFP.ATOMIC | GFP.NOFAIL, 3)).toBe('..........');
    // The countdown was not touched by ineligible calls.
    expect(fi.failNth).toBe(1);
    expect(run(fi, 1)).toBe('x');
  });

  it('does not fail orders below minOrder (default 1: order-0 is safe)', () => {
    const fi = new FaultInjector({ probability: 100, verbose: 0 });
    expect(run(fi, 3, GFP.ATOMIC, 0)).toBe('...');
    expect(run(fi, 3, GFP.ATOMIC, 1)).toBe('xxx');
    const all = new FaultInjector({ probability: 100, minOrder: 0, verbose: 0 });
    expect(run(all, 3, GFP.ATOMIC, 0)).toBe('xxx');
    const high = new FaultInjector({ probability: 100, minOrder: 4, verbose: 0 });
    expect(run(high, 1, GFP.ATOMIC, 3) + run(high, 1, GFP.ATOMIC, 4)).toBe('.x');
  });

  it('does not fail callers that may reclaim, unless ignoreGfpWait is false', () => {
    const fi = new FaultInjector({ probability: 100, verbose: 0 });
    expect(run(fi, 3, GFP.KERNEL)).toBe('...');
    expect(run(fi, 3, GFP.NOWAIT)).toBe('xxx');
    const waiters = new FaultInjector({ probability: 100, ignoreGfpWait: false, verbose: 0 });
    expect(run(waiters, 3, GFP.KERNEL)).toBe('xxx');
  });
});

describe('FaultInjector: should_fail_ex', () => {
  it('fails exactly the Nth eligible call with failNth, then is spent', () => {
    const fi = new FaultInjector({ failNth: 3, verbose: 0 });
    const seen: number[] = [];
    let s = '';
    for (let i = 0; i < 6; i++) {
      s += fi.shouldFail(GFP.ATOMIC, 1) ? 'x' : '.';
      seen.push(fi.failNth);
    }
    expect(s).toBe('..x...');
    // Reads back 0 once the failure was injected, as /proc/self/fail-nth.
    expect(seen).toEqual([2, 1, 0, 0, 0, 0]);
  });

  it('checks failNth before probability, and the normal rules after it is spent', () => {
    const fi = new FaultInjector({ failNth: 2, probability: 100, verbose: 0 });
    expect(run(fi, 5)).toBe('.xxxx');
  });

  it('fails the fail-nth call even when times is spent, without taking times below 0', () => {
    const fi = new FaultInjector({ failNth: 1, probability: 100, times: 0, verbose: 0 });
    expect(run(fi, 3)).toBe('x..');
    expect(fi.times).toBe(0);
  });

  it('stops after `times` failures; -1 is unlimited', () => {
    const fi = new FaultInjector({ probability: 100, times: 2, verbose: 0 });
    expect(run(fi, 5)).toBe('xx...');
    expect(fi.times).toBe(0);
    const unlimited = new FaultInjector({ probability: 100, times: -1, verbose: 0 });
    expect(run(unlimited, 100)).toBe('x'.repeat(100));
    expect(unlimited.times).toBe(-1);
  });

  it('lets `space` bytes through first (size = 4096 << order), strictly greater as the kernel', () => {
    const fi = new FaultInjector({ probability: 100, space: 20_000, verbose: 0 });
    expect(run(fi, 4, GFP.ATOMIC, 1)).toBe('..xx');
    // 20000 - 2 * 8192 = 3616 left, which no order-1 call will consume.
    expect(fi.space).toBe(3616);
    // A budget equal to the size is not consumed: the call may fail.
    const exact = new FaultInjector({ probability: 100, space: '8KiB', verbose: 0 });
    expect(run(exact, 1, GFP.ATOMIC, 1)).toBe('x');
    expect(exact.space).toBe(8192);
    const order0 = new FaultInjector({ probability: 100, space: 8192 + 1, minOrder: 0, verbose: 0 });
    expect(run(order0, 4, GFP.ATOMIC, 0)).toBe('..xx');
    expect(order0.space).toBe(1);
  });

  it('fails only every `interval`th call that got past space', () => {
    const fi = new FaultInjector({ probability: 100, interval: 3, verbose: 0 });
    expect(run(fi, 9)).toBe('..x..x..x');
    // Ineligible calls do not count.
    const mixed = new FaultInjector({ probability: 100, interval: 2, verbose: 0 });
    let s = '';
    for (let i = 0; i < 4; i++) {
      s += mixed.shouldFail(GFP.KERNEL, 1) ? 'x' : '.';
      s += mixed.shouldFail(GFP.ATOMIC, 1) ? 'x' : '.';
    }
    expect(s).toBe('...x...x');
    // space is consumed before the interval count starts.
    const both = new FaultInjector({ probability: 100, interval: 2, space: 8193, verbose: 0 });
    expect(run(both, 5)).toBe('..x.x');
  });

  it('draws against probability with a seeded PRNG: reproducible, and about the right rate', () => {
    const a = run(new FaultInjector({ probability: 30, seed: 42, verbose: 0 }), 10_000);
    const b = run(new FaultInjector({ probability: 30, seed: 42, verbose: 0 }), 10_000);
    const c = run(new FaultInjector({ probability: 30, seed: 43, verbose: 0 }), 10_000);
    expect(a).toBe(b);
    expect(a).not.toBe(c);
    const rate = a.split('').filter((ch) => ch === 'x').length / a.length;
    expect(rate).toBeGreaterThan(0.27);
    expect(rate).toBeLessThan(0.33);
    const tiny = run(new FaultInjector({ probability: 0.5, seed: 7, verbose: 0 }), 20_000);
    const tinyRate = tiny.split('').filter((ch) => ch === 'x').length / tiny.length;
    expect(tinyRate).toBeGreaterThan(0.002);
    expect(tinyRate).toBeLessThan(0.008);
  });

  it('counts checks and injections', () => {
    const fi = new FaultInjector({ probability: 100, times: 3, verbose: 0 });
    run(fi, 2, GFP.KERNEL);
    run(fi, 5);
    expect(fi.stats).toEqual({ checked: 7, injected: 3 });
  });
});

describe('FaultInjector: verbose', () => {
  function capture(): { got: Warning[]; off: () => void } {
    const got: Warning[] = [];
    const fn = (m: unknown): void => void got.push(m as Warning);
    subscribe('nofail:alloc-failure', fn);
    return { got, off: () => unsubscribe('nofail:alloc-failure', fn) };
  }

  it('reports an injected failure through warn(); 2 adds the stack', async () => {
    const c = capture();
    new FaultInjector({ probability: 100, verbose: 2, seed: 5 }).shouldFail(GFP.ATOMIC, 2);
    await immediate();
    resetWarnings();
    new FaultInjector({ probability: 100, verbose: 1 }).shouldFail(GFP.ATOMIC, 1);
    await immediate();
    c.off();
    expect(c.got).toHaveLength(2);
    expect(c.got[0]).toMatchObject({
      code: 'NOFAIL_ALLOC_FAILURE',
      message: 'FAULT_INJECTION: forcing a failure.',
      name: 'fail_page_alloc',
      order: 2,
      mode: '0x820',
      probability: 100,
      times: -1,
      seed: 5,
    });
    expect(c.got[0]!.stack).toMatch(/06-faultinject\.test\.ts/);
    expect(c.got[0]!.stack).not.toMatch(/shouldFail/);
    expect(c.got[1]!.stack).toBeUndefined();
  });

  it('is silent with verbose 0 and for __GFP_NOWARN callers', async () => {
    const c = capture();
    expect(new FaultInjector({ probability: 100, verbose: 0 }).shouldFail(GFP.ATOMIC, 1)).toBe(true);
    expect(new FaultInjector({ probability: 100 }).shouldFail(GFP.ATOMIC | GFP.NOWARN, 1)).toBe(true);
    await immediate();
    c.off();
    expect(c.got).toHaveLength(0);
  });
});

describe('FaultInjector: options', () => {
  const typeErr = (opts: unknown, name: string) =>
    expect(() => new FaultInjector(opts as never)).toThrowError(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringContaining(name) }),
    );
  const rangeErr = (opts: unknown, name: string) =>
    expect(() => new FaultInjector(opts as never)).toThrowError(
      expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', message: expect.stringContaining(name) }),
    );

  it('rejects values of the wrong type, naming the option', () => {
    typeErr(null, 'options');
    typeErr(5, 'options');
    typeErr({ probability: '10' }, 'probability');
    typeErr({ interval: true }, 'interval');
    typeErr({ times: '1' }, 'times');
    typeErr({ space: {} }, 'space');
    typeErr({ minOrder: '1' }, 'minOrder');
    typeErr({ ignoreGfpWait: 1 }, 'ignoreGfpWait');
    typeErr({ failNth: '2' }, 'failNth');
    typeErr({ seed: '1' }, 'seed');
    typeErr({ verbose: '1' }, 'verbose');
  });

  it('rejects values out of range, naming them', () => {
    rangeErr({ probability: -1 }, 'probability');
    rangeErr({ probability: 101 }, 'probability');
    rangeErr({ probability: NaN }, 'probability');
    rangeErr({ interval: 0 }, 'interval');
    rangeErr({ interval: 1.5 }, 'interval');
    rangeErr({ times: -2 }, 'times');
    rangeErr({ space: -1 }, 'space');
    rangeErr({ space: 'lots' }, 'space');
    rangeErr({ minOrder: -1 }, 'minOrder');
    rangeErr({ failNth: -1 }, 'failNth');
    rangeErr({ seed: 2 ** 32 }, 'seed');
    rangeErr({ verbose: 3 }, 'verbose');
  });

  it('rejects an unknown option, naming it and the nearest valid one', () => {
    expect(() => new FaultInjector({ probabilty: 10 } as never)).toThrowError(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining("'probabilty'; did you mean 'probability'?") }),
    );
  });
});
