/**
 * From what one run of a policy recorded (board, histograms, samples,
 * warnings, pool statistics) to its result: the metrics of the report's
 * table, per workload counts and digests, what the 2015 scene came to
 * (deadlock.ts), the timeline and the latency curve.
 */
import type { RecordableHistogram } from 'node:perf_hooks';
import type { Worker } from 'node:worker_threads';
import { type PoolOptions, type PoolStats, type Warning } from '../index.js';
import type { LabPolicy } from './api.js';
import { BOARD_WORD, SLOT_WORD, type Board } from './board.js';
import type { LabOptions, Shape } from './config.js';
import { type DeadlockRecord, deadlockRecord, NO_DEADLOCK_RECORD } from './deadlock.js';
import type { HookFailure } from './hooks.js';
import { type LatencySummary, newHistogram, recordCorrected, summarize } from './latency.js';
import { DIGEST_FIRST_OPS } from './plan.js';
import { FNV_OFFSET, fnv1a } from './rng.js';
import { STALL_MS } from './workloads/meter.js';

export interface Sample {
  /** ms since the run started */
  t: number;
  free: number;
  allocated: number;
  /** Pages held back by reservations (watermark and tokens). */
  reserved: number;
  /** Pages set aside by the policy and unused (reservations, preallocation, mempool elements). */
  idle: number;
  /** Successful operations so far, per workload. */
  ok: Record<string, number>;
  /** 1 while the filesystem is read-only. */
  ro: number;
  psiSomeUs: number;
  psiFullUs: number;
  /** 1 while the watchdog sees no progress. */
  stalled: number;
}

export interface SlotRecord {
  slot: number;
  workload: string;
  worker: Worker | null;
  gen: number;
  /** The latest histograms of each generation. */
  hist: Array<{ alloc: RecordableHistogram; op: RecordableHistogram; opPlentiful: RecordableHistogram } | null>;
  /** Kills this slot's workers learned of (delivered; ms since the clock origin). */
  kills: Array<{ gen: number; at: number; exitedAt: number | null }>;
  /** When each of its workers exited (ms since the run started). */
  exits: number[];
  terminated: number;
  /** How long the allocation in flight had lasted when its worker was terminated (ms). */
  inflightAtStop: number[];
}

export interface WorkloadStats {
  workers: number;
  issued: number;
  ok: number;
  failed: number;
  refused: number;
  allocs: number;
  allocFails: number;
  stalls: number;
  kills: number;
  heldPeak: number;
  /** FNV-1a digest of the operations issued, slot by slot (hex): how many fit in the run depends on the machine. */
  digest: string;
  /**
   * Operations of each worker that firstDigest covers: DIGEST_FIRST_OPS, or
   * fewer when a worker issued fewer (then firstDigest depends on timing too).
   */
  firstOps: number;
  /**
   * FNV-1a digest of each worker's first firstOps operations, slot by slot
   * (hex): with firstOps == DIGEST_FIRST_OPS, the same for the same seed
   * on any machine — the run's reproducibility evidence.
   */
  firstDigest: string;
  alloc: LatencySummary;
  op: LatencySummary;
  opPlentiful: LatencySummary;
  /** Pages set aside and unused, integrated over time (page·µs). */
  idlePus: number;
}

export interface PolicyMetrics {
  txPerSec: number;
  txPerSecPlentiful: number;
  txPerSecPressure: number;
  txCommitted: number;
  txFailed: number;
  txRefused: number;
  readOnlyFlips: number;
  /** Allocation latency, all workloads, µs (coordinated-omission corrected). */
  alloc: LatencySummary;
  /** fs transaction latency from its scheduled start, µs. */
  tx: LatencySummary;
  /** fs transaction service time (begin to commit, no schedule lag) while memory was plentiful, µs. */
  txPlentiful: LatencySummary;
  /** Allocations that took over a second (those still in flight at the end included). */
  stalls: number;
  livelocks: number;
  longestNoProgressMs: number;
  oomKills: number;
  /** OOM kills of a task that was not the hog. */
  bystanderKills: number;
  victimsBlockedOnLock: number;
  reaped: number;
  victimTimeouts: number;
  /** Longest time from a kill to its worker's exit (ms); victims still alive at the end count until then. */
  victimExitMaxMs: number;
  victimsNeverExited: number;
  peakUsePct: number;
  peakUsePages: number;
  idleMean: number;
  idleMax: number;
  idleMeanPlentiful: number;
  psiSomePct: number;
  psiFullPct: number;
  netDrops: number;
  netBursts: number;
  canaries: number;
  allocFails: number;
}

/** One run of one policy. */
export interface PolicyResult {
  name: string;
  summary: string;
  system: string;
  /** This run's seed (LabOptions.seed + the run's index). */
  seed: number;
  poolOptions: Pick<PoolOptions, 'behavior' | 'oom'>;
  partial: boolean;
  /** A hook that threw: the run stopped there and its figures do not count. */
  failure: HookFailure | null;
  wallMs: number;
  totalPages: number;
  watermarks: { min: number; low: number; high: number };
  metrics: PolicyMetrics;
  workloads: Record<string, WorkloadStats>;
  timeline: Sample[];
  vmstat: Record<string, number>;
  /** OOM kills: when (ms since the start), whom, how long until the victim's worker exited (null: it never did). */
  kills: Array<{ workload: string; slot: number; atMs: number; exitMs: number | null; blockedBy?: string }>;
  /** The OOM killer's reports (kills, reaps, timeouts), ms since the run started. */
  oomEvents: OomEvent[];
  /** What the 2015 scene came to in this run. */
  deadlock: DeadlockRecord;
}

export interface OomEvent {
  atMs: number;
  what: 'kill' | 'reap' | 'timeout';
  victim: string;
  /** For a kill: the victim was waiting for a lock held by this task (by name), if any. */
  blockedBy?: string;
}

function oomEvents(warnings: Warning[], startEpochMs: number): OomEvent[] {
  const out: OomEvent[] = [];
  for (const w of warnings) {
    if (w.kind !== 'oom-kill') continue;
    const atMs = Math.round(w.time - startEpochMs);
    const victim = w.victim as { name?: string; blockedOn?: number; holder?: number } | undefined;
    if (victim !== undefined) {
      const tasks = (w.tasks as Array<{ id: number; name: string }> | undefined) ?? [];
      const holder = victim.blockedOn ? (tasks.find((t) => t.id === victim.holder)?.name ?? `task-${victim.holder}`) : undefined;
      out.push({ atMs, what: 'kill', victim: victim.name ?? '?', ...(holder ? { blockedBy: holder } : {}) });
    } else if (w.reaped === true) {
      out.push({ atMs, what: 'reap', victim: /\(([^)]*)\)/.exec(w.message)?.[1] ?? '?' });
    } else if (typeof w.timeoutMs === 'number') {
      out.push({ atMs, what: 'timeout', victim: /\(([^)]*)\)/.exec(w.message)?.[1] ?? '?' });
    }
  }
  return out.sort((a, b) => a.atMs - b.atMs);
}

export interface RunRecord {
  policy: LabPolicy;
  options: LabOptions;
  shape: Shape;
  poolOptions: Pick<PoolOptions, 'behavior' | 'oom'>;
  board: Board;
  slots: SlotRecord[];
  /** Each workload's op interval (ms): the coordinated-omission correction of what was in flight at the end. */
  intervals: Record<string, number>;
  samples: Sample[];
  warnings: Warning[];
  statsAtStart: PoolStats;
  statsAtEnd: PoolStats;
  watchdog: { livelocks: number; longestMs: number };
  wallMs: number;
  /** The run's start on the Date.now() clock (warnings carry Date.now() times). */
  startEpochMs: number;
  /** The run's start on the board's clock (ms since the clock origin). */
  startMs: number;
  partial: boolean;
  failure: HookFailure | null;
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

function workloadStats(r: RunRecord, w: string, allAlloc: RecordableHistogram): WorkloadStats {
  const recs = r.slots.filter((s) => s.workload === w);
  const alloc = newHistogram();
  const op = newHistogram();
  const opPlentiful = newHistogram();
  const interval = r.intervals[w] ?? 0;
  let digest = FNV_OFFSET;
  let firstDigest = FNV_OFFSET;
  let stalls = 0;
  for (const rec of recs) {
    for (const h of rec.hist) {
      if (h === null || h === undefined) continue;
      alloc.add(h.alloc);
      op.add(h.op);
      opPlentiful.add(h.opPlentiful);
    }
    for (const ms of rec.inflightAtStop) {
      recordCorrected(alloc, ms * 1000, interval * 1000);
      if (ms >= STALL_MS) stalls++;
    }
    digest = fnv1a(digest, r.board.get(rec.slot, SLOT_WORD.DIGEST) >>> 0);
    firstDigest = fnv1a(firstDigest, r.board.get(rec.slot, SLOT_WORD.DIGEST_FIRST) >>> 0);
  }
  allAlloc.add(alloc);
  const get = (word: number) => sum(recs.map((s) => r.board.get(s.slot, word)));
  return {
    workers: recs.length,
    issued: get(SLOT_WORD.ISSUED),
    ok: get(SLOT_WORD.OK),
    failed: get(SLOT_WORD.FAILED),
    refused: get(SLOT_WORD.REFUSED),
    allocs: get(SLOT_WORD.ALLOCS),
    allocFails: get(SLOT_WORD.ALLOC_FAILS),
    stalls: get(SLOT_WORD.STALLS) + stalls,
    kills: get(SLOT_WORD.KILLS),
    heldPeak: Math.max(0, ...recs.map((s) => r.board.get(s.slot, SLOT_WORD.HELD_PEAK))),
    digest: digest.toString(16).padStart(8, '0'),
    firstOps: Math.min(DIGEST_FIRST_OPS, ...recs.map((s) => r.board.get(s.slot, SLOT_WORD.ISSUED))),
    firstDigest: firstDigest.toString(16).padStart(8, '0'),
    alloc: summarize(alloc),
    op: summarize(op),
    opPlentiful: summarize(opPlentiful),
    idlePus: get(SLOT_WORD.IDLE_PUS),
  };
}

export function collect(r: RunRecord): PolicyResult {
  const allAlloc = newHistogram();
  const workloads: Record<string, WorkloadStats> = {};
  for (const w of new Set(r.slots.map((s) => s.workload))) workloads[w] = workloadStats(r, w, allAlloc);
  const fs = workloads.fs;
  const total = r.statsAtEnd.totalPages;
  const samples = r.samples;
  const wallS = Math.max(1e-3, r.wallMs / 1000);
  // The plentiful phase ends when the hog starts.
  const boundary = [...samples].reverse().find((s) => s.t <= r.shape.pressureAtMs) ?? samples[0];
  const fsAt = (s: Sample | undefined) => s?.ok.fs ?? 0;
  const last = samples[samples.length - 1];
  const plentifulS = Math.max(1e-3, (boundary?.t ?? 0) / 1000);
  const pressureS = Math.max(1e-3, wallS - plentifulS);
  const plentiful = samples.filter((s) => s.t <= r.shape.pressureAtMs);
  const vm0 = r.statsAtStart.vmstat as Record<string, number>;
  const vm1 = r.statsAtEnd.vmstat as Record<string, number>;
  const vmstat: Record<string, number> = {};
  for (const k of Object.keys(vm1)) vmstat[k] = (vm1[k] ?? 0) - (vm0[k] ?? 0);
  const events = oomEvents(r.warnings, r.startEpochMs);
  // From the OOM killer's decision to the victim's exit (or the end of the run).
  const kills = events
    .filter((e) => e.what === 'kill')
    .map((e) => {
      const rec = r.slots.find((x) => `${x.workload}-${x.slot}` === e.victim);
      const exit = rec?.exits.find((t) => t >= e.atMs - 50);
      return { workload: rec?.workload ?? e.victim, slot: rec?.slot ?? -1, atMs: e.atMs, exitMs: exit === undefined ? null : Math.max(0, Math.round(exit - e.atMs)), blockedBy: e.blockedBy };
    });
  const exitTimes = kills.map((k) => k.exitMs ?? Math.max(0, r.wallMs - k.atMs));
  const deadlock = deadlockRecord({ board: r.board, slots: r.slots, events, samples, startMs: r.startMs, wallMs: r.wallMs, shape: r.shape });
  // Chosen while waiting for a lock (the kill report says so), or chosen first and blocked on the lock on its way out (the scene's record).
  const blockedLater = deadlock.victimBlocked && !kills.some((k) => k.atMs === deadlock.victimAtMs && k.blockedBy !== undefined) ? 1 : 0;
  const metrics: PolicyMetrics = {
    txPerSec: (fs?.ok ?? 0) / wallS,
    txPerSecPlentiful: fsAt(boundary) / plentifulS,
    txPerSecPressure: (fsAt(last) - fsAt(boundary)) / pressureS,
    txCommitted: fs?.ok ?? 0,
    txFailed: fs?.failed ?? 0,
    txRefused: fs?.refused ?? 0,
    readOnlyFlips: r.board.g(BOARD_WORD.RO_FLIPS),
    alloc: summarize(allAlloc),
    tx: fs?.op ?? summarize(newHistogram()),
    txPlentiful: fs?.opPlentiful ?? summarize(newHistogram()),
    stalls: sum(Object.values(workloads).map((w) => w.stalls)),
    livelocks: r.watchdog.livelocks,
    longestNoProgressMs: Math.round(r.watchdog.longestMs),
    oomKills: vmstat.oom_kill ?? 0,
    bystanderKills: kills.filter((k) => k.workload !== 'hog').length,
    victimsBlockedOnLock: kills.filter((k) => k.blockedBy !== undefined).length + blockedLater,
    reaped: events.filter((e) => e.what === 'reap').length,
    victimTimeouts: events.filter((e) => e.what === 'timeout').length,
    victimExitMaxMs: Math.round(Math.max(0, ...exitTimes)),
    victimsNeverExited: kills.filter((k) => k.exitMs === null).length,
    peakUsePct: (100 * Math.max(0, ...samples.map((s) => s.allocated))) / total,
    peakUsePages: Math.max(0, ...samples.map((s) => s.allocated)),
    idleMean: sum(Object.values(workloads).map((w) => w.idlePus)) / (wallS * 1e6) + (samples.length ? sum(samples.map((s) => s.idle)) / samples.length : 0),
    idleMax: Math.max(0, ...samples.map((s) => s.idle)),
    idleMeanPlentiful: plentiful.length ? sum(plentiful.map((s) => s.idle)) / plentiful.length : 0,
    psiSomePct: (100 * (r.statsAtEnd.psi.some.total - r.statsAtStart.psi.some.total)) / (wallS * 1e6),
    psiFullPct: (100 * (r.statsAtEnd.psi.full.total - r.statsAtStart.psi.full.total)) / (wallS * 1e6),
    netDrops: workloads.net?.failed ?? 0,
    netBursts: workloads.net?.issued ?? 0,
    canaries: r.warnings.filter((w) => w.kind === 'alloc-deadlock').length,
    allocFails: sum(Object.values(workloads).map((w) => w.allocFails)),
  };
  return {
    name: r.policy.name,
    summary: r.policy.summary,
    system: r.policy.system,
    seed: r.shape.seed,
    poolOptions: r.poolOptions,
    partial: r.partial,
    failure: r.failure,
    wallMs: Math.round(r.wallMs),
    totalPages: total,
    watermarks: r.statsAtEnd.watermarks,
    metrics,
    workloads,
    timeline: samples,
    vmstat,
    kills,
    oomEvents: events,
    deadlock,
  };
}

/** The result of a run that failed before its workers started (the pool's options or setup() threw). */
export function failedResult(policy: LabPolicy, poolOptions: Pick<PoolOptions, 'behavior' | 'oom'>, shape: Shape, failure: HookFailure): PolicyResult {
  const none = summarize(newHistogram());
  const metrics: PolicyMetrics = {
    txPerSec: 0,
    txPerSecPlentiful: 0,
    txPerSecPressure: 0,
    txCommitted: 0,
    txFailed: 0,
    txRefused: 0,
    readOnlyFlips: 0,
    alloc: none,
    tx: none,
    txPlentiful: none,
    stalls: 0,
    livelocks: 0,
    longestNoProgressMs: 0,
    oomKills: 0,
    bystanderKills: 0,
    victimsBlockedOnLock: 0,
    reaped: 0,
    victimTimeouts: 0,
    victimExitMaxMs: 0,
    victimsNeverExited: 0,
    peakUsePct: 0,
    peakUsePages: 0,
    idleMean: 0,
    idleMax: 0,
    idleMeanPlentiful: 0,
    psiSomePct: 0,
    psiFullPct: 0,
    netDrops: 0,
    netBursts: 0,
    canaries: 0,
    allocFails: 0,
  };
  return {
    name: policy.name,
    summary: policy.summary,
    system: policy.system,
    seed: shape.seed,
    poolOptions,
    partial: false,
    failure,
    wallMs: 0,
    totalPages: shape.totalPages,
    watermarks: { min: 0, low: 0, high: 0 },
    metrics,
    workloads: {},
    timeline: [],
    vmstat: {},
    kills: [],
    oomEvents: [],
    deadlock: NO_DEADLOCK_RECORD,
  };
}
