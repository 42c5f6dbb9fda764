/**
 * What the 2015 scene (workloads/scene.ts) came to in one run, from the
 * board's scene words, the OOM killer's reports and the samples — facts
 * measured in the run, never a policy's design:
 *
 *   livelock        the cueing worker blocked on the lock, the holder never
 *                   released it, and nothing made progress for the
 *                   watchdog time up to the end of the run
 *   stuck           the holder never released it, but other work went on
 *   recovered       an OOM victim was blocked on the lock (chosen while it
 *                   waited, or chosen first and blocked on its way out)
 *                   while the holder waited for memory (an allocation of
 *                   HOLDER_WAITED_US or more), and the holder's transaction
 *                   still ended: something freed memory the victim could
 *                   not (the reaper; the victim timeout's next victim;
 *                   last-resort reserves)
 *   failed          the holder's own allocation failed (ENOMEM, and the
 *                   holder was not a victim): 3.19's answer, the
 *                   filesystem goes read-only
 *   never happened  no OOM victim was blocked on the lock of a holder that
 *                   waited for memory: the cueing worker never reached the
 *                   lock (it waited for its reservation before it), got it
 *                   before anyone was chosen, or the holder's allocations
 *                   never waited (its pages were reserved)
 *   not staged      the scene was not cued, or did not get as far as the
 *                   cueing worker's transaction, in this run
 */
import { BOARD_WORD, type Board } from './board.js';
import type { Shape } from './config.js';
import { HOLDER_OUTCOME, SCENE_STATE } from './workloads/scene.js';

/**
 * A holder's allocation that took this long went into reclaim or waited:
 * a plain allocation takes microseconds, and one served by a reservation
 * never reclaims.
 */
export const HOLDER_WAITED_US = 2000;

export type DeadlockOutcome = 'livelock' | 'stuck' | 'recovered' | 'failed' | 'never happened' | 'not staged';
export const DEADLOCK_OUTCOMES: readonly DeadlockOutcome[] = ['livelock', 'stuck', 'recovered', 'failed', 'never happened', 'not staged'];

export interface DeadlockRecord {
  outcome: DeadlockOutcome;
  /** Who cued the scene ('hog-3') and who held the lock for it ('fs-0'); null when nobody did. */
  cuer: string | null;
  holder: string | null;
  /** When each step happened, ms since the run's start; null: it did not. */
  cuedAtMs: number | null;
  lockedAtMs: number | null;
  /** The cueing worker released the holder and was about to block on the lock. */
  queuedAtMs: number | null;
  /** The cueing worker got the lock. */
  acquiredAtMs: number | null;
  /** The holder unlocked; its transaction's outcome ('ok', 'failed', …), null while it still held it. */
  releasedAtMs: number | null;
  holderOutcome: string | null;
  /** The holder's longest allocation while it held the lock for the scene (µs); null while it still held it. */
  holderWaitUs: number | null;
  /** The cueing worker's transaction ended before the lock. */
  abortedAtMs: number | null;
  /** The first OOM kill of the cueing worker after the cue, and whether it was blocked on the lock as a victim. */
  victimAtMs: number | null;
  victimBlocked: boolean;
  /** The holder was itself chosen as a victim while it held the lock. */
  holderKilled: boolean;
  /** The victim's pages were reaped, or it outlived the victim timeout (ms since the start; null: not). */
  reapedAtMs: number | null;
  timedOutAtMs: number | null;
  /** Kills after the first victim while the lock was held: names, in order. */
  nextVictims: string[];
  /** The last stretch without progress reached the end of the run (ms), 0 if progress was being made. */
  stalledAtEndMs: number;
}

export const NO_DEADLOCK_RECORD: DeadlockRecord = {
  outcome: 'not staged',
  cuer: null,
  holder: null,
  cuedAtMs: null,
  lockedAtMs: null,
  queuedAtMs: null,
  acquiredAtMs: null,
  releasedAtMs: null,
  holderOutcome: null,
  holderWaitUs: null,
  abortedAtMs: null,
  victimAtMs: null,
  victimBlocked: false,
  holderKilled: false,
  reapedAtMs: null,
  timedOutAtMs: null,
  nextVictims: [],
  stalledAtEndMs: 0,
};

/** What deadlockRecord reads of a run (collect.ts has these, and more). */
interface Inputs {
  board: Board;
  /** Slot index → workload: how the board's slot words become task names. */
  slots: ReadonlyArray<{ slot: number; workload: string }>;
  /** The OOM killer's reports, ms since the run's start. */
  events: ReadonlyArray<{ atMs: number; what: 'kill' | 'reap' | 'timeout'; victim: string }>;
  /** The watchdog's view: ms since the start, and 1 while nothing made progress. */
  samples: ReadonlyArray<{ t: number; stalled: number }>;
  /** The run's start, ms since the clock origin (the board's times are ms + 1 since it). */
  startMs: number;
  /** The run's length up to the stop, ms: what the board records later is the teardown's. */
  wallMs: number;
  shape: Shape;
}

export function deadlockRecord(x: Inputs): DeadlockRecord {
  const b = x.board;
  // A scene word written after the run ended did not happen in the run: the
  // stop lets workers finish and exit, and the memory they free can let a
  // holder stuck for the whole run commit during the teardown. That commit
  // is the teardown's doing, not the policy's.
  const at = (word: number): number | null => {
    const v = b.g(word);
    if (v === 0) return null;
    const ms = Math.max(0, Math.round(v - 1 - x.startMs));
    return ms > x.wallMs ? null : ms;
  };
  const name = (word: number): string | null => {
    const v = b.g(word);
    const rec = v === 0 ? undefined : x.slots[v - 1];
    return rec === undefined ? null : `${rec.workload}-${rec.slot}`;
  };
  const state = b.g(BOARD_WORD.SCENE);
  if (state === SCENE_STATE.NONE) return { ...NO_DEADLOCK_RECORD, stalledAtEndMs: stalledAtEnd(x) };
  const r: DeadlockRecord = {
    ...NO_DEADLOCK_RECORD,
    cuer: name(BOARD_WORD.SCENE_CUE_SLOT),
    holder: name(BOARD_WORD.SCENE_HOLDER_SLOT),
    cuedAtMs: at(BOARD_WORD.SCENE_CUED_AT),
    lockedAtMs: at(BOARD_WORD.SCENE_LOCKED_AT),
    queuedAtMs: at(BOARD_WORD.SCENE_QUEUED_AT),
    acquiredAtMs: at(BOARD_WORD.SCENE_ACQUIRED_AT),
    releasedAtMs: at(BOARD_WORD.SCENE_RELEASED_AT),
    abortedAtMs: at(BOARD_WORD.SCENE_ABORTED_AT),
    stalledAtEndMs: stalledAtEnd(x),
  };
  const outcome = b.g(BOARD_WORD.SCENE_HOLDER_OUTCOME);
  r.holderOutcome = r.releasedAtMs === null ? null : (Object.entries(HOLDER_OUTCOME).find(([, v]) => v === outcome)?.[0] ?? null);
  r.holderWaitUs = r.releasedAtMs === null ? null : b.g(BOARD_WORD.SCENE_HOLDER_WAIT_US);
  // The cueing worker's first kill after the cue (its generation played the scene; a kill before the cue is another story).
  const cued = r.cuedAtMs ?? 0;
  const events = x.events.filter((e) => e.atMs <= x.wallMs); // as the scene words: the run's, not the teardown's
  const victim = events.find((e) => e.what === 'kill' && e.victim === r.cuer && e.atMs >= cued - 1);
  r.victimAtMs = victim?.atMs ?? null;
  // Blocked as a victim: it was waiting for the lock when chosen (queued
  // before the kill and not yet through), or chosen first and then queued.
  r.victimBlocked = victim !== undefined && r.queuedAtMs !== null && (r.acquiredAtMs === null || victim.atMs <= r.acquiredAtMs);
  const lockEnd = r.releasedAtMs ?? Infinity;
  r.holderKilled = r.holder !== null && events.some((e) => e.what === 'kill' && e.victim === r.holder && e.atMs >= (r.lockedAtMs ?? 0) && e.atMs <= lockEnd);
  if (victim !== undefined) {
    r.reapedAtMs = events.find((e) => e.what === 'reap' && e.victim === r.cuer && e.atMs >= victim.atMs)?.atMs ?? null;
    r.timedOutAtMs = events.find((e) => e.what === 'timeout' && e.victim === r.cuer && e.atMs >= victim.atMs)?.atMs ?? null;
    r.nextVictims = events.filter((e) => e.what === 'kill' && e.atMs > victim.atMs && e.atMs <= lockEnd).map((e) => e.victim);
  }
  r.outcome = outcomeOf(r, x.shape);
  return r;
}

function outcomeOf(r: DeadlockRecord, shape: Shape): DeadlockOutcome {
  if (r.queuedAtMs === null) return r.abortedAtMs !== null ? 'never happened' : 'not staged';
  if (r.releasedAtMs === null) return r.stalledAtEndMs >= shape.watchdogMs ? 'livelock' : 'stuck';
  if (r.holderOutcome === 'failed' && !r.holderKilled) return 'failed';
  return r.victimBlocked && (r.holderWaitUs ?? 0) >= HOLDER_WAITED_US ? 'recovered' : 'never happened';
}

/** How long the run had gone without progress (the watchdog's view) when it ended. */
function stalledAtEnd(x: Inputs): number {
  let since: number | null = null;
  for (const s of x.samples) since = s.stalled ? (since ?? s.t) : null;
  return since === null ? 0 : Math.max(0, Math.round(x.wallMs - since + x.shape.watchdogMs));
}
