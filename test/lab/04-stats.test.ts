/**
 * From runs to what the report says: medians and ranges, the summary by
 * criterion (a policy is named best only where its range overlaps no
 * other's; one run per policy ranks nothing), and what the 2015 scene came
 * to in a run, read from the board's words and the OOM killer's reports
 * (deadlock.ts).
 */
import { describe, expect, it } from 'vitest';
import { Board, BOARD_WORD } from '../../src/lab/board.js';
import type { OomEvent, PolicyResult, Sample, SlotRecord } from '../../src/lab/collect.js';
import { shapeOf } from '../../src/lab/config.js';
import { deadlockRecord, HOLDER_WAITED_US } from '../../src/lab/deadlock.js';
import { criteria, overlaps, type PolicySummary, spreadOf, summarizePolicies } from '../../src/lab/report/stats.js';
import { HOLDER_OUTCOME, SCENE_STATE } from '../../src/lab/workloads/scene.js';
import { result } from './fixtures/results.js';

describe('spreads', () => {
  it('median, min and max', () => {
    expect(spreadOf([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, n: 3 });
    expect(spreadOf([4, 1, 2, 10])).toEqual({ median: 3, min: 1, max: 10, n: 4 });
    expect(spreadOf([])).toBeNull();
  });

  it('overlap when the ranges share a value', () => {
    expect(overlaps(spreadOf([1, 3])!, spreadOf([3, 5])!)).toBe(true);
    expect(overlaps(spreadOf([1, 2.9])!, spreadOf([3, 5])!)).toBe(false);
  });
});

/** A run of `name` that committed `txPerSec` and killed `bystanders`; the rest quiet. */
function run(name: string, seed: number, txPerSec: number, bystanders = 0): PolicyResult {
  return result(name, { txPerSec, bystanderKills: bystanders }, { seed });
}

function policies(runs: PolicyResult[]): PolicySummary[] {
  return summarizePolicies(runs, [...new Set(runs.map((r) => r.name))], {});
}

function criterion(ps: PolicySummary[], re: RegExp) {
  return criteria(ps).find((c) => re.test(c.criterion))!;
}

describe('the summary by criterion', () => {
  it('names the best policy when its range overlaps no other', () => {
    const ps = policies([run('a', 1, 1500), run('b', 1, 1000), run('a', 2, 1480), run('b', 2, 1100), run('a', 3, 1520), run('b', 3, 1050)]);
    const c = criterion(ps, /per second/);
    expect(c.best).toBe('a');
    expect(c.text).toBe('a (median 1500 tx/s, 1480–1520 tx/s; next, b: median 1050 tx/s, 1000–1100 tx/s)');
  });

  it('ranks nobody when the ranges overlap, even with medians 8 % apart', () => {
    const ps = policies([run('a', 1, 1500), run('b', 1, 1300), run('a', 2, 1350), run('b', 2, 1400), run('a', 3, 1510), run('b', 3, 1390)]);
    const c = criterion(ps, /per second/);
    expect(c.best).toBeNull();
    expect(c.text).toBe('no single best: the ranges of a and b overlap (a 1350–1510, b 1300–1400 tx/s)');
  });

  it('says a tie is a tie', () => {
    const ps = policies([run('a', 1, 1), run('b', 1, 2), run('a', 2, 1), run('b', 2, 2)]);
    const c = criterion(ps, /bystanders/);
    expect(c.best).toBeNull();
    expect(c.text).toBe('no single best: a and b tie at 0 in every run');
  });

  it('ranks nothing from one run per policy', () => {
    const ps = policies([run('a', 1, 1500), run('b', 1, 100)]);
    for (const c of criteria(ps)) {
      expect(c.best).toBeNull();
      expect(c.text).toContain('one run per policy gives no range');
    }
  });

  it('leaves a failed policy out of the ranking', () => {
    const failed = { ...run('b', 1, 9999), failure: { module: 'm', hook: 'h', where: 'fs-0', message: 'x', stack: 'x' } };
    const ps = policies([run('a', 1, 1500), run('a', 2, 1400), failed, run('c', 1, 100), run('c', 2, 120)]);
    expect(ps.find((p) => p.name === 'b')!.complete).toBe(0);
    expect(criterion(ps, /per second/).best).toBe('a');
  });
});

describe('what the 2015 scene came to', () => {
  const shape = shapeOf({ poolBytes: 32 << 20, durationMs: 1800, seed: 1, timeScale: 0.1 });
  const START = 1000; // the run's start on the board's clock
  const slots = ['fs', 'net', 'user', 'hog', 'fs', 'fs'].map((workload, slot) => ({ slot, workload }) as SlotRecord);

  /** A board with the scene's words at these times (ms since the start). */
  function board(o: { state: number; cued?: number; locked?: number; queued?: number; acquired?: number; released?: number; aborted?: number; outcome?: keyof typeof HOLDER_OUTCOME; waitUs?: number }): Board {
    const b = new Board(slots.length);
    const at = (word: number, t: number | undefined) => t !== undefined && b.setG(word, START + t + 1);
    b.setG(BOARD_WORD.SCENE, o.state);
    b.setG(BOARD_WORD.SCENE_CUE_SLOT, 4);
    b.setG(BOARD_WORD.SCENE_HOLDER_SLOT, 1);
    at(BOARD_WORD.SCENE_CUED_AT, o.cued);
    at(BOARD_WORD.SCENE_LOCKED_AT, o.locked);
    at(BOARD_WORD.SCENE_QUEUED_AT, o.queued);
    at(BOARD_WORD.SCENE_ACQUIRED_AT, o.acquired);
    at(BOARD_WORD.SCENE_RELEASED_AT, o.released);
    at(BOARD_WORD.SCENE_ABORTED_AT, o.aborted);
    if (o.outcome) b.setG(BOARD_WORD.SCENE_HOLDER_OUTCOME, HOLDER_OUTCOME[o.outcome]);
    if (o.waitUs !== undefined) b.setG(BOARD_WORD.SCENE_HOLDER_WAIT_US, o.waitUs);
    return b;
  }
  const stalledFrom = (t: number): Sample[] => [0, t, 1800].map((x, i) => ({ t: x, stalled: i > 0 ? 1 : 0 }) as Sample);
  const kill = (atMs: number, victim = 'hog-3'): OomEvent => ({ atMs, what: 'kill', victim });
  const record = (b: Board, events: OomEvent[], samples: Sample[] = []) => deadlockRecord({ board: b, slots, events, samples, startMs: START, wallMs: 1800, shape });
  const formed = { state: SCENE_STATE.QUEUED, cued: 600, locked: 601, queued: 640 };

  it('livelock: the holder never let go and nothing moved to the end', () => {
    const r = record(board(formed), [kill(650)], stalledFrom(1000));
    expect(r).toMatchObject({ outcome: 'livelock', cuer: 'hog-3', holder: 'fs-0', victimAtMs: 650, victimBlocked: true, queuedAtMs: 640 });
    expect(r.stalledAtEndMs).toBe(800 + shape.watchdogMs);
  });

  it('livelock still, when the holder commits only in the teardown after the run ended', () => {
    // Seen in a default run: the loop policy's holder got its page at 1807 ms of a 1800 ms run,
    // once the stopped workers' memory came back.
    const b = board({ ...formed, acquired: 1806, released: 1807, outcome: 'ok', waitUs: 1_170_000 });
    const r = record(b, [], stalledFrom(1000));
    expect(r).toMatchObject({ outcome: 'livelock', releasedAtMs: null, acquiredAtMs: null, holderOutcome: null });
    expect(record(board({ ...formed, acquired: 1799, released: 1800, outcome: 'ok', waitUs: 1_170_000 }), [], stalledFrom(1000)).outcome).toBe('never happened');
  });

  it('stuck, not livelock, when other work went on', () => {
    expect(record(board(formed), [kill(650)]).outcome).toBe('stuck');
  });

  it("recovered: a blocked victim, a holder that waited for memory, and a release — the reaper's or the timeout's next victim named", () => {
    const b = board({ ...formed, acquired: 860, released: 855, outcome: 'ok', waitUs: 200_000 });
    const r = record(b, [kill(650), { atMs: 850, what: 'reap', victim: 'hog-3' }]);
    expect(r).toMatchObject({ outcome: 'recovered', reapedAtMs: 850, holderOutcome: 'ok', holderWaitUs: 200_000 });
    const t = record(b, [kill(650), { atMs: 840, what: 'timeout', victim: 'hog-3' }, kill(845, 'user-2')]);
    expect(t).toMatchObject({ outcome: 'recovered', timedOutAtMs: 840, nextVictims: ['user-2'] });
  });

  it('chosen first and blocked on its way out still counts as blocked; chosen after it got the lock does not', () => {
    const b = board({ ...formed, acquired: 860, released: 855, outcome: 'ok', waitUs: 200_000 });
    expect(record(b, [kill(620)]).victimBlocked).toBe(true);
    expect(record(b, [kill(900)]).outcome).toBe('never happened');
  });

  it('never happened: a holder whose allocations never waited (its pages were reserved)', () => {
    const b = board({ ...formed, acquired: 650, released: 642, outcome: 'ok', waitUs: HOLDER_WAITED_US - 1 });
    expect(record(b, [kill(630)]).outcome).toBe('never happened');
  });

  it('never happened: the cueing worker never reached the lock', () => {
    const b = board({ state: SCENE_STATE.ABORTED, cued: 600, locked: 601, aborted: 700, released: 710, outcome: 'ok', waitUs: 30 });
    expect(record(b, [kill(690)])).toMatchObject({ outcome: 'never happened', victimBlocked: false, abortedAtMs: 700 });
  });

  it("failed: the holder's own allocation failed — unless the holder was itself a victim (the timeout chose it)", () => {
    const b = board({ ...formed, acquired: 700, released: 690, outcome: 'failed', waitUs: 50_000 });
    expect(record(b, [kill(650)]).outcome).toBe('failed');
    expect(record(b, [kill(650), kill(680, 'fs-0')])).toMatchObject({ outcome: 'recovered', holderKilled: true, nextVictims: ['fs-0'] });
  });

  it('not staged: never cued, or cued and never got as far as the lock', () => {
    expect(record(board({ state: SCENE_STATE.NONE }), []).outcome).toBe('not staged');
    expect(record(board({ state: SCENE_STATE.CUED, cued: 1700 }), []).outcome).toBe('not staged');
  });
});
