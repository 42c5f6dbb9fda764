/**
 * The lab's findings (src/lab/report/findings.ts) on synthetic results:
 * for each finding, metrics and 2015-scene records (deadlock.ts) that
 * reach each of its verdicts, with the verdict and the numbers its text
 * quotes; and the same findings over several runs ("observed in k of N").
 * The thresholds are the module's own constants, so each case sits on a
 * known side of them; the cases just inside a threshold are what make
 * "loops" and "preallocation is costly" refutable.
 */
import { describe, expect, it } from 'vitest';
import type { PolicyMetrics, PolicyResult } from '../../src/lab/collect.js';
import { shapeOf } from '../../src/lab/config.js';
import { type DeadlockRecord, NO_DEADLOCK_RECORD } from '../../src/lab/deadlock.js';
import { COST_MIN_US, COST_REL, type Finding, findings, findingsOverRuns, IDLE_SHARE, WAIT_FACTOR, WAIT_MIN_US } from '../../src/lab/report/findings.js';

import { latency, result, shape, TOTAL } from './fixtures/results.js';

/** A scene record: the hog cued it at 600 ms, fs-0 held the lock, and `o` over that. */
function scene(o: Partial<DeadlockRecord>): DeadlockRecord {
  return { ...NO_DEADLOCK_RECORD, cuer: 'hog-3', holder: 'fs-0', cuedAtMs: 600, lockedAtMs: 601, queuedAtMs: 640, ...o };
}
/** Each way the scene ends, as deadlock.ts records it. */
const LIVELOCK = (victim: boolean) => scene({ outcome: 'livelock', victimAtMs: victim ? 650 : null, victimBlocked: victim, stalledAtEndMs: 5300 });
const REAPED = scene({ outcome: 'recovered', victimAtMs: 650, victimBlocked: true, reapedAtMs: 850, releasedAtMs: 855, acquiredAtMs: 856, holderOutcome: 'ok', holderWaitUs: 205_000 });
const TIMED_OUT = (next: string[], outcome: DeadlockRecord['outcome'] = 'recovered') =>
  scene({ outcome, victimAtMs: 650, victimBlocked: true, timedOutAtMs: 3150, nextVictims: next, releasedAtMs: outcome === 'recovered' ? 3170 : null, holderOutcome: outcome === 'recovered' ? 'ok' : null, holderWaitUs: 2_500_000 });
const NEVER = scene({ outcome: 'never happened', queuedAtMs: null, abortedAtMs: 700, victimAtMs: 690, releasedAtMs: 710, holderOutcome: 'ok', holderWaitUs: 40 });

function finding(results: PolicyResult[], claim: RegExp): Finding {
  const f = findings(results, shape).find((x) => claim.test(x.claim));
  if (f === undefined) throw new Error(`no finding ${claim}`);
  return f;
}

describe("3.19's failing GFP_NOFS allocations", () => {
  const claim = /failing GFP_NOFS/;

  it('observed: fail-fast failed transactions (the numbers of the run, and linux-4.0 for reference)', () => {
    const f = finding(
      [result('fail-fast', { txFailed: 12, readOnlyFlips: 2, txRefused: 30, txPerSec: 1234 }, { fs: { allocFails: 15 } }), result('oom-kill', { txFailed: 0 })],
      claim,
    );
    expect(f.verdict).toBe('observed');
    expect(f.text).toContain('12 fs transactions failed part-way with ENOMEM (15 failed GFP_NOFS allocations)');
    expect(f.text).toContain('went read-only 2 times and refused 30 transactions while read-only, committing 1234 tx/s');
    expect(f.text).toContain('Under linux-4.0 (oom-kill) 0 failed.');
    expect(f.text).toContain('Rule: observed when any fail-fast fs transaction fails.');
  });

  it('not observed: none failed (this finding has no partial verdict)', () => {
    const f = finding([result('fail-fast')], claim);
    expect(f.verdict).toBe('not observed');
    expect(f.text).toContain('no fs transaction failed');
    expect(f.text).toContain('Rule: observed when any fail-fast fs transaction fails.');
  });
});

describe("the looping allocator's livelock (TIF_MEMDIE)", () => {
  const claim = /livelock when the OOM victim/;

  it('observed: under oom-kill the victim was blocked on the lock and nothing moved to the end, and loop hung the same way', () => {
    const f = finding([result('loop', {}, { deadlock: LIVELOCK(false) }), result('oom-kill', { oomKills: 1 }, { deadlock: LIVELOCK(true) })], claim);
    expect(f.verdict).toBe('observed');
    expect(f.text).toContain("loop: livelock — fs-0 held the fs lock for hog-3, which took the rest of memory and blocked on it; fs-0's allocation never completed; no OOM killer, so nobody was chosen; no progress for the last 5.30s of the run");
    expect(f.text).toContain('oom-kill: livelock — fs-0 held the fs lock for hog-3');
    expect(f.text).toContain('the OOM killer chose hog-3, blocked on that lock and chose no one else while it was outstanding');
    expect(f.text).toContain('at least the watchdog time (1.00s) up to the end of the run');
  });

  it('partly observed: oom-kill hung, but its victim was never blocked on the lock (it is the blocked victim that makes the claim)', () => {
    const f = finding([result('loop', {}, { deadlock: LIVELOCK(false) }), result('oom-kill', {}, { deadlock: { ...LIVELOCK(true), victimBlocked: false } })], claim);
    expect(f.verdict).toBe('partly observed');
  });

  it('partly observed: only one of the two hung', () => {
    const f = finding([result('loop', {}, { deadlock: LIVELOCK(false) }), result('oom-kill', {}, { deadlock: REAPED })], claim);
    expect(f.verdict).toBe('partly observed');
    expect(f.text).toContain('oom-kill: recovered — the OOM killer chose hog-3, blocked on that lock (held by fs-0); the reaper took its pages 200ms after the kill');
  });

  it('not observed: neither hung', () => {
    const f = finding([result('loop', {}, { deadlock: NEVER }), result('oom-kill', {}, { deadlock: { ...NEVER, outcome: 'not staged', cuer: null, holder: null, cuedAtMs: null } })], claim);
    expect(f.verdict).toBe('not observed');
    expect(f.text).toContain('oom-kill: not staged — the scene was not staged in this run');
  });

  it('judges only the policies that ran', () => {
    expect(finding([result('oom-kill', {}, { deadlock: LIVELOCK(true) })], claim).verdict).toBe('observed');
    expect(finding([result('fail-fast')], claim).verdict).toBe('not run');
  });
});

describe("the victim timeout's extra kills", () => {
  const claim = /victim timeout/;
  const reaper = result('oom-reaper', { oomKills: 1, reaped: 1 }, { deadlock: REAPED });

  it('observed: the blocked victim outlived the timeout, a task that was not the hog was killed next, and the lock came free', () => {
    const f = finding([result('oom-timeout', { victimTimeouts: 1, oomKills: 2, bystanderKills: 1 }, { deadlock: TIMED_OUT(['user-2']) }), reaper], claim);
    expect(f.verdict).toBe('observed');
    expect(f.text).toContain(
      "oom-timeout: recovered — the OOM killer chose hog-3, blocked on that lock (held by fs-0); it outlived the victim timeout (2.50s after the kill) and the OOM killer chose user-2; fs-0's transaction committed 2.52s after the kill; 1 bystander killed in the run.",
    );
    expect(f.text).toContain("oom-reaper: recovered — the OOM killer chose hog-3, blocked on that lock (held by fs-0); the reaper took its pages 200ms after the kill; fs-0's transaction committed 205ms after the kill; 0 bystanders killed in the run.");
    expect(f.text).toContain('outlived the 2.50s timeout');
  });

  it('partly observed: the victim outlived the timeout, but the next victim was a hog (no bystander), or the lock never came free', () => {
    expect(finding([result('oom-timeout', {}, { deadlock: TIMED_OUT(['hog-3']) })], claim).verdict).toBe('partly observed');
    expect(finding([result('oom-timeout', {}, { deadlock: TIMED_OUT(['user-2'], 'livelock') })], claim).verdict).toBe('partly observed');
  });

  it('not observed: no victim stayed past the timeout', () => {
    const f = finding([result('oom-timeout', { oomKills: 1 }, { deadlock: NEVER })], claim);
    expect(f.verdict).toBe('not observed');
    expect(f.text).toContain('no victim stayed past the timeout, so the timeout never chose another');
  });
});

describe('reservations', () => {
  const claim = /^reservations/;
  const reserved = (name: string, txFailed: number, deadlock = NEVER) =>
    result(name, { txFailed, txPlentiful: latency(180), idleMean: 12.5, tx: latency(300, 60_000) }, { vmstat: { reserve_waits: 7 }, deadlock });

  it('observed: fail-fast failed, no reserved transaction did', () => {
    const f = finding([result('fail-fast', { txFailed: 5 }), reserved('reserve-watermark', 0), reserved('reserve-tokens', 0)], claim);
    expect(f.verdict).toBe('observed');
    expect(f.text).toContain(
      'reserve-watermark: fs transaction service time p50 180µs while memory was plentiful against 150µs for fail-fast (+20%), 12.5 pages reserved and unused on average; ' +
        'under pressure 0 failed transactions against 5, 7 reservations had to wait, fs transaction p99 60ms against 40ms; ' +
        "the 2015 scene: never happened — hog-3's transaction ended before it reached the fs lock; it was chosen as the OOM victim there, not blocked on a lock",
    );
    expect(f.text).toContain('No reserved transaction failed, and no OOM victim was blocked on the fs lock.');
  });

  it('partly observed: an OOM victim was blocked on the lock under a reservation', () => {
    const f = finding([result('fail-fast', { txFailed: 5 }), reserved('reserve-watermark', 0), reserved('reserve-tokens', 0, REAPED)], claim);
    expect(f.verdict).toBe('partly observed');
    expect(f.text).toContain('an OOM victim was blocked on the fs lock.');
  });

  it('partly observed: reserved transactions failed too', () => {
    const f = finding([result('fail-fast', { txFailed: 5 }), reserved('reserve-watermark', 0), reserved('reserve-tokens', 1)], claim);
    expect(f.verdict).toBe('partly observed');
    expect(f.text).toContain('under pressure 1 failed transactions against 5');
  });

  it('not observed: fail-fast did not fail, so the guarantee was not tested', () => {
    const f = finding([result('fail-fast'), reserved('reserve-tokens', 0)], claim);
    expect(f.verdict).toBe('not observed');
    expect(f.text).toContain('fail-fast did not fail either');
  });

  it('not run without fail-fast', () => {
    expect(finding([reserved('reserve-tokens', 0)], claim).verdict).toBe('not run');
  });
});

describe('mempools and preallocation', () => {
  const claim = /mempools and preallocation/;
  const BASE = 150; // fail-fast's service time p50 (µs)
  // Costly in time from BASE + max(25 % of it, 50 µs) = 200 µs.
  const costFrom = BASE + Math.max(COST_REL * BASE, COST_MIN_US);
  const ff = () => result('fail-fast', { txPlentiful: latency(BASE) });
  const mempool = (txFailed: number) => result('mempool', { txFailed });
  const prealloc = (p50: number, idleMean = 20) => result('preallocate', { txPlentiful: latency(p50), idleMean, txRefused: 497, txFailed: 1 });

  it('the thresholds are the ones the text states', () => {
    expect(costFrom).toBe(200);
    expect(IDLE_SHARE * TOTAL).toBeCloseTo(81.92);
  });

  it('observed: mempool failed transactions, and preallocation was slower than both margins', () => {
    const f = finding([ff(), mempool(3), prealloc(300)], claim);
    expect(f.verdict).toBe('observed');
    expect(f.text).toContain('mempool: 3 failed transactions against 0 for fail-fast');
    expect(f.text).toContain('preallocate: fs transaction service time p50 300µs while memory was plentiful against 150µs for fail-fast (+100%; a cost from 200µs: costly)');
    expect(f.text).toContain('20.0 preallocated pages unused on average (a cost from 81.9, 1% of the pool: below), 497 transactions refused, 1 failed');
    expect(f.text).toContain("exceeds fail-fast's by 25% and 50µs both, or its unused preallocated pages average 1% of the pool");
  });

  it('partly observed: only the mempool half (a slower p50 within the margin is no cost)', () => {
    const f = finding([ff(), mempool(3), prealloc(costFrom - 1)], claim);
    expect(f.verdict).toBe('partly observed');
    expect(f.text).toContain('(+33%; a cost from 200µs: within the margin)');
  });

  it('partly observed: only the preallocation half, by the memory it leaves idle', () => {
    const f = finding([ff(), mempool(0), prealloc(BASE, 100)], claim);
    expect(f.verdict).toBe('partly observed');
    expect(f.text).toContain('100.0 preallocated pages unused on average (a cost from 81.9, 1% of the pool: costly)');
  });

  it('not observed: neither half, though preallocate was a little slower', () => {
    // +10 %: what any p50 difference used to be enough for.
    const f = finding([ff(), mempool(0), prealloc(165)], claim);
    expect(f.verdict).toBe('not observed');
    expect(f.text).toContain('(+10%; a cost from 200µs: within the margin)');
  });

  it('both margins must be passed: a large relative but small absolute difference, and the reverse, are no cost', () => {
    // 100 µs → 140 µs: +40 % but only 40 µs.
    const small = finding([result('fail-fast', { txPlentiful: latency(100) }), prealloc(140)], claim);
    expect(small.verdict).toBe('not observed');
    expect(small.text).toContain('a cost from 150µs: within the margin');
    // 1000 µs → 1200 µs: 200 µs but only +20 %.
    const relative = finding([result('fail-fast', { txPlentiful: latency(1000) }), prealloc(1200)], claim);
    expect(relative.verdict).toBe('not observed');
    expect(relative.text).toContain('a cost from 1.3ms: within the margin');
    expect(finding([result('fail-fast', { txPlentiful: latency(1000) }), prealloc(1250)], claim).verdict).toBe('partly observed');
  });
});

describe('__GFP_NOFAIL and the retry loop: the loop only moves', () => {
  const claim = /trade failures for waits/;
  const FF_P99 = 40_000; // fail-fast's fs transaction p99 (µs)
  // Waited from max(3 × 40 ms, 40 ms + 10 ms) = 120 ms.
  const waitFrom = Math.max(WAIT_FACTOR * FF_P99, FF_P99 + WAIT_MIN_US);
  const ff = (o: Partial<PolicyMetrics> = {}, stalls = 0) => result('fail-fast', { tx: latency(300, FF_P99), ...o }, { fs: { stalls } });
  const loop = (name: string, p99: number, o: Partial<PolicyMetrics> = {}, stalls = 0) => result(name, { tx: latency(300, p99), ...o }, { fs: { stalls } });

  it('the threshold is the one the text states', () => {
    expect(waitFrom).toBe(120_000);
  });

  it('observed: both waited — one by its transaction p99, one by allocations over a second — and neither failed', () => {
    const f = finding([ff(), loop('nofail-flag', 150_000), loop('caller-retry', 45_000, { livelocks: 1, canaries: 3 }, 2)], claim);
    expect(f.verdict).toBe('observed');
    expect(f.text).toContain('nofail-flag: 0 failed transactions, fs transaction p99 150ms, 0 fs allocations over 1s, max allocation 35ms, 0 livelocks — waited (fs transaction p99 150ms >= 120ms)');
    expect(f.text).toContain('caller-retry: 0 failed transactions, fs transaction p99 45ms, 2 fs allocations over 1s, max allocation 35ms, 1 livelock, 3 "possible memory allocation deadlock" canaries — waited (2 fs allocations over 1s, 1 livelock)');
    expect(f.text).toContain('fail-fast, the same workload without the loop: 0 failed, fs transaction p99 40ms, 0 fs allocations over 1s, 0 livelocks.');
    expect(f.text).toContain("at least 3x fail-fast's and 10ms above it");
  });

  it('partly observed: only one of them waited', () => {
    const f = finding([ff(), loop('nofail-flag', waitFrom - 1000), loop('caller-retry', 45_000, {}, 1)], claim);
    expect(f.verdict).toBe('partly observed');
    expect(f.text).toContain('fs transaction p99 119ms, 0 fs allocations over 1s, max allocation 35ms, 0 livelocks — no wait beyond the threshold');
  });

  it('not observed: p99s over 100 ms that fail-fast has too are no wait, nor are stalls and livelocks fail-fast had as well', () => {
    // What a fixed 100 ms threshold took for a wait: both p99s are over it.
    const f = finding([ff({ tx: latency(300, 200_000), livelocks: 1 }, 2), loop('nofail-flag', 300_000, { livelocks: 1 }, 2), loop('caller-retry', 250_000, {}, 1)], claim);
    expect(f.verdict).toBe('not observed');
    expect(f.text).toContain('nofail-flag: 0 failed transactions, fs transaction p99 300ms');
    expect(f.text.match(/no wait beyond the threshold/g)).toHaveLength(2);
  });

  it('not observed: a small fail-fast p99 times 3 is not enough without the absolute margin', () => {
    // 2 ms → 7 ms: 3.5 times, but only 5 ms more.
    const f = finding([ff({ tx: latency(300, 2000) }), loop('nofail-flag', 7000)], claim);
    expect(f.verdict).toBe('not observed');
    expect(f.text).toContain('fs transaction p99 2.0ms');
  });

  it('partly observed when all waited but a transaction failed anyway', () => {
    const f = finding([ff(), loop('nofail-flag', 150_000, { txFailed: 2 })], claim);
    expect(f.verdict).toBe('partly observed');
    expect(f.text).toContain('nofail-flag: 2 failed transactions');
  });

  it('without fail-fast only allocations over 1s and livelocks count', () => {
    const quiet = finding([loop('nofail-flag', 900_000)], claim);
    expect(quiet.verdict).toBe('not observed');
    expect(quiet.text).toContain('fail-fast did not run: only allocations over 1s and livelocks count as waits.');
    expect(finding([loop('nofail-flag', 900_000, {}, 1)], claim).verdict).toBe('observed');
  });
});

describe('findings over several runs', () => {
  const claim = /failing GFP_NOFS/;
  const over = (failedPerRun: number[]) =>
    findingsOverRuns(
      failedPerRun.map((txFailed, i) => result('fail-fast', { txFailed }, { seed: 11 + i })),
      (seed) => shapeOf({ poolBytes: 32 << 20, durationMs: 6000, seed, timeScale: 0.5 }),
    ).find((x) => claim.test(x.claim))!;

  it('observed only when every run observed it, with each run\'s verdict and text', () => {
    const f = over([3, 1, 2]);
    expect(f.verdict).toBe('observed');
    expect([f.observed, f.partly, f.runs]).toEqual([3, 0, 3]);
    expect(f.text).toMatch(/^Observed: observed in 3 of 3 runs\. Run 1 \(seed 11\): fail-fast \(linux-3\.19\): 3 fs transactions failed/);
    expect(f.perRun.map((x) => x.seed)).toEqual([11, 12, 13]);
  });

  it('partly observed when some runs did not: "k of N"', () => {
    const f = over([3, 0, 2]);
    expect(f.verdict).toBe('partly observed');
    expect(f.text).toMatch(/^Partly observed: observed in 2 of 3 runs\./);
    expect(f.perRun[1]!.verdict).toBe('not observed');
  });

  it('says a single run has nothing to confirm it', () => {
    expect(over([1]).text).toMatch(/^Observed: observed in 1 of 1 run \(one run: no repeat to confirm it\)\./);
  });

  it('leaves out runs whose hook threw', () => {
    const runs = [result('fail-fast', { txFailed: 2 }, { seed: 1 }), { ...result('fail-fast', { txFailed: 0 }, { seed: 2 }), failure: { module: 'm', hook: 'h', where: 'fs-0', message: 'x', stack: 'x' } }];
    const f = findingsOverRuns(runs, (seed) => shapeOf({ poolBytes: 32 << 20, durationMs: 6000, seed, timeScale: 0.5 })).find((x) => claim.test(x.claim))!;
    expect([f.verdict, f.observed, f.runs]).toEqual(['observed', 1, 1]);
  });
});
