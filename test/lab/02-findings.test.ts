/**
 * The lab's findings (src/lab/report/findings.ts) on synthetic results:
 * for each finding, metrics that reach each of its verdicts, with the
 * verdict and the numbers its text quotes. The thresholds are the
 * module's own constants, so each case sits on a known side of them; the
 * cases just inside a threshold are what make "loops" and "preallocation
 * is costly" refutable (before, any p99 over 100 ms and any p50 difference
 * counted).
 */
import { describe, expect, it } from 'vitest';
import type { PolicyMetrics, PolicyResult, WorkloadStats } from '../../src/lab/collect.js';
import { shapeOf } from '../../src/lab/config.js';
import type { LatencySummary } from '../../src/lab/latency.js';
import { COST_MIN_US, COST_REL, type Finding, findings, IDLE_SHARE, WAIT_FACTOR, WAIT_MIN_US } from '../../src/lab/report/findings.js';

// 32 MiB, 6 s: watchdog 1 s; timeScale 0.5: the victim timeout is 2.5 s.
const shape = shapeOf({ poolBytes: 32 << 20, durationMs: 6000, seed: 1, timeScale: 0.5 });
const TOTAL = shape.totalPages;

function latency(p50: number, p99 = p50, max = p99): LatencySummary {
  return { count: 1000, p50, p99, p999: max, max, curve: [] };
}

function fsStats(o: Partial<WorkloadStats> = {}): WorkloadStats {
  return {
    workers: 3,
    issued: 1000,
    ok: 1000,
    failed: 0,
    refused: 0,
    allocs: 5000,
    allocFails: 0,
    stalls: 0,
    kills: 0,
    heldPeak: 20,
    digest: '00000000',
    firstOps: 256,
    firstDigest: '00000000',
    alloc: latency(2, 50),
    op: latency(150, 40_000),
    opPlentiful: latency(150),
    idlePus: 0,
    ...o,
  };
}

/** A policy's result: quiet metrics (nothing failed, waited or was killed) with `m` over them. */
function result(name: string, m: Partial<PolicyMetrics> = {}, extra: { fs?: Partial<WorkloadStats>; kills?: PolicyResult['kills']; vmstat?: Record<string, number> } = {}): PolicyResult {
  const metrics: PolicyMetrics = {
    txPerSec: 1500,
    txPerSecPlentiful: 1500,
    txPerSecPressure: 1500,
    txCommitted: 9000,
    txFailed: 0,
    txRefused: 0,
    readOnlyFlips: 0,
    alloc: latency(2, 3000, 35_000),
    tx: latency(300, 40_000),
    txPlentiful: latency(150),
    stalls: 0,
    livelocks: 0,
    longestNoProgressMs: 0,
    oomKills: 0,
    nonHogKills: 0,
    victimsBlockedOnLock: 0,
    reaped: 0,
    victimTimeouts: 0,
    victimExitMaxMs: 0,
    victimsNeverExited: 0,
    peakUsePct: 95,
    peakUsePages: Math.round(0.95 * TOTAL),
    idleMean: 0,
    idleMax: 0,
    idleMeanPlentiful: 0,
    psiSomePct: 0,
    psiFullPct: 0,
    netDrops: 0,
    netBursts: 100,
    canaries: 0,
    allocFails: 0,
    errors: 0,
    ...m,
  };
  return {
    name,
    summary: name,
    system: 'test',
    poolOptions: {},
    partial: false,
    wallMs: 6000,
    totalPages: TOTAL,
    watermarks: { min: 128, low: 160, high: 192 },
    metrics,
    workloads: { fs: fsStats({ failed: metrics.txFailed, refused: metrics.txRefused, ...extra.fs }) },
    timeline: [],
    vmstat: extra.vmstat ?? {},
    kills: extra.kills ?? [],
    oomEvents: [],
    errors: [],
  };
}

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
  const blocked = { workload: 'user', slot: 2, atMs: 3000, blockedBy: 'fs-0' };

  it('observed: a victim blocked on the lock never exited, and the watchdog saw a livelock', () => {
    const f = finding(
      [result('oom-kill', { livelocks: 1, longestNoProgressMs: 2400, oomKills: 2 }, { kills: [{ ...blocked, exitMs: null }, { workload: 'hog', slot: 3, atMs: 1500, exitMs: 20 }] })],
      claim,
    );
    expect(f.verdict).toBe('observed');
    expect(f.text).toContain('1 of 2 victims were waiting for the fs lock held by fs-0 when chosen; one never exited');
    expect(f.text).toContain('the watchdog saw 1 livelock(s), the longest 2.40s without progress');
    expect(f.text).toContain('outlived the watchdog time (1.00s)');
  });

  it('partly observed: a blocked victim, but it exited within the watchdog time and nothing stalled', () => {
    const f = finding([result('oom-kill', { oomKills: 1 }, { kills: [{ ...blocked, exitMs: 300 }] })], claim);
    expect(f.verdict).toBe('partly observed');
    expect(f.text).toContain('one exited after 300ms');
    expect(f.text).toContain('the watchdog saw 0 livelock(s)');
  });

  it('not observed: no victim waited for the lock and there was no livelock', () => {
    const f = finding([result('oom-kill', { oomKills: 1 }, { kills: [{ workload: 'hog', slot: 3, atMs: 1500, exitMs: 20 }] }), result('loop', { livelocks: 0, longestNoProgressMs: 120 })], claim);
    expect(f.verdict).toBe('not observed');
    expect(f.text).toContain('no victim was waiting for a lock when it was chosen');
    expect(f.text).toContain('Livelocks elsewhere: loop 0 (longest 120ms).');
  });
});

describe("the victim timeout's extra kills", () => {
  const claim = /victim timeout/;

  it('observed: a victim outlived the timeout and a task that was not the hog was killed', () => {
    const f = finding([result('oom-timeout', { victimTimeouts: 2, oomKills: 4, nonHogKills: 1 }), result('oom-reaper', { oomKills: 2, reaped: 2 })], claim);
    expect(f.verdict).toBe('observed');
    expect(f.text).toContain('oom-timeout: 2 victims outlived the 2.50s timeout; 4 kills, 1 of them not the hog.');
    expect(f.text).toContain('With the reaper: 2 kills, 0 of them not the hog, 2 victims reaped.');
  });

  it('partly observed: a victim outlived the timeout, with no extra kill', () => {
    const f = finding([result('oom-timeout', { victimTimeouts: 1, oomKills: 2 }), result('oom-reaper', { oomKills: 2 })], claim);
    expect(f.verdict).toBe('partly observed');
    expect(f.text).toContain('1 victims outlived the 2.50s timeout; 2 kills, 0 of them not the hog');
  });

  it('not observed: no victim stayed past the timeout', () => {
    const f = finding([result('oom-timeout', { oomKills: 3 })], claim);
    expect(f.verdict).toBe('not observed');
    expect(f.text).toContain('No victim stayed past the timeout, so the timeout never chose another.');
  });
});

describe('reservations', () => {
  const claim = /^reservations/;
  const reserved = (name: string, txFailed: number) =>
    result(name, { txFailed, txPlentiful: latency(180), idleMean: 12.5, tx: latency(300, 60_000) }, { vmstat: { reserve_waits: 7 } });

  it('observed: fail-fast failed, no reserved transaction did', () => {
    const f = finding([result('fail-fast', { txFailed: 5 }), reserved('reserve-watermark', 0), reserved('reserve-tokens', 0)], claim);
    expect(f.verdict).toBe('observed');
    expect(f.text).toContain(
      'reserve-watermark: fs transaction service time p50 180µs while memory was plentiful against 150µs for fail-fast (+20%), 12.5 pages reserved and unused on average; ' +
        'under pressure 0 failed transactions against 5, 7 reservations had to wait, fs transaction p99 60ms against 40ms',
    );
    expect(f.text).toContain('No reserved transaction failed.');
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
