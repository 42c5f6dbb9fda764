/**
 * From runs to policies: each policy's runs grouped, each metric as a
 * median with its min and max over the runs that completed, what the 2015
 * scene came to in each, and the summary by criterion — a policy is named
 * best only where its range does not overlap any other's, so two
 * policies a few percent apart are not ranked on noise.
 */
import type { PolicyResult } from '../collect.js';
import type { DeadlockOutcome } from '../deadlock.js';
import type { HookFailure } from '../hooks.js';
import { msOfUs } from './units.js';

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** Runs it is taken over. */
  n: number;
}

export function spreadOf(xs: readonly number[]): Spread | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, n: s.length };
}

/** Two ranges overlap (share a value): neither policy is shown better than the other. */
export function overlaps(a: Spread, b: Spread): boolean {
  return a.min <= b.max && b.min <= a.max;
}

/** The per-run figures the report aggregates. */
export const METRICS = {
  txPerSec: (r: PolicyResult) => r.metrics.txPerSec,
  txCommitted: (r: PolicyResult) => r.metrics.txCommitted,
  txFailed: (r: PolicyResult) => r.metrics.txFailed,
  txRefused: (r: PolicyResult) => r.metrics.txRefused,
  readOnlyFlips: (r: PolicyResult) => r.metrics.readOnlyFlips,
  allocP50: (r: PolicyResult) => r.metrics.alloc.p50,
  allocP99: (r: PolicyResult) => r.metrics.alloc.p99,
  allocP999: (r: PolicyResult) => r.metrics.alloc.p999,
  allocMax: (r: PolicyResult) => r.metrics.alloc.max,
  txP50: (r: PolicyResult) => r.metrics.tx.p50,
  txP99: (r: PolicyResult) => r.metrics.tx.p99,
  txPlentifulP50: (r: PolicyResult) => r.metrics.txPlentiful.p50,
  stalls: (r: PolicyResult) => r.metrics.stalls,
  livelocks: (r: PolicyResult) => r.metrics.livelocks,
  longestNoProgressMs: (r: PolicyResult) => r.metrics.longestNoProgressMs,
  oomKills: (r: PolicyResult) => r.metrics.oomKills,
  bystanderKills: (r: PolicyResult) => r.metrics.bystanderKills,
  victimsBlockedOnLock: (r: PolicyResult) => r.metrics.victimsBlockedOnLock,
  victimsNeverExited: (r: PolicyResult) => r.metrics.victimsNeverExited,
  victimExitMaxMs: (r: PolicyResult) => r.metrics.victimExitMaxMs,
  reaped: (r: PolicyResult) => r.metrics.reaped,
  victimTimeouts: (r: PolicyResult) => r.metrics.victimTimeouts,
  peakUsePct: (r: PolicyResult) => r.metrics.peakUsePct,
  idleMean: (r: PolicyResult) => r.metrics.idleMean,
  psiSomePct: (r: PolicyResult) => r.metrics.psiSomePct,
  psiFullPct: (r: PolicyResult) => r.metrics.psiFullPct,
  netDrops: (r: PolicyResult) => r.metrics.netDrops,
  netBursts: (r: PolicyResult) => r.metrics.netBursts,
  canaries: (r: PolicyResult) => r.metrics.canaries,
} as const;
export type MetricKey = keyof typeof METRICS;

export interface PolicySummary {
  name: string;
  summary: string;
  system: string;
  /** The user's module it came from; null for a built-in policy. */
  module: string | null;
  /** Every run of it, in order (failed and interrupted ones included). */
  runs: PolicyResult[];
  /** The first run whose hook threw: the policy is marked failed and its figures are left out. */
  failure: HookFailure | null;
  /** Runs the figures are taken over: those that completed (not failed, not interrupted). */
  complete: number;
  /** Each metric over the complete runs; null when there are none. */
  spread: Record<MetricKey, Spread | null>;
  /** How many runs ended each way in the 2015 scene (complete runs only). */
  deadlock: Partial<Record<DeadlockOutcome, number>>;
}

export function summarizePolicies(results: readonly PolicyResult[], order: readonly string[], modules: Record<string, string>): PolicySummary[] {
  const names = [...order.filter((n) => results.some((r) => r.name === n)), ...new Set(results.map((r) => r.name).filter((n) => !order.includes(n)))];
  return names.map((name) => {
    const runs = results.filter((r) => r.name === name);
    const complete = runs.filter((r) => r.failure === null && !r.partial);
    // An interrupted run still says something when it is the only one.
    const counted = complete.length > 0 ? complete : runs.filter((r) => r.failure === null);
    const spread = Object.fromEntries(Object.entries(METRICS).map(([k, f]) => [k, spreadOf(counted.map(f))])) as Record<MetricKey, Spread | null>;
    const deadlock: Partial<Record<DeadlockOutcome, number>> = {};
    for (const r of counted) deadlock[r.deadlock.outcome] = (deadlock[r.deadlock.outcome] ?? 0) + 1;
    const first = runs[0]!;
    return {
      name,
      summary: first.summary,
      system: first.system,
      module: modules[name] ?? null,
      runs,
      failure: runs.find((r) => r.failure !== null)?.failure ?? null,
      complete: complete.length,
      spread,
      deadlock,
    };
  });
}

export interface Criterion {
  /** 'committed the most transactions' */
  criterion: string;
  metric: MetricKey;
  better: 'higher' | 'lower';
  /** The policy named best, when its range overlaps no other's; null otherwise. */
  best: string | null;
  text: string;
}

/** The criteria: a metric, which way is better, and how its values read (number, then unit). */
const CRITERIA: Array<{ criterion: string; metric: MetricKey; better: 'higher' | 'lower'; fmt: (v: number) => string; unit: string }> = [
  // Per second: a run lasts longer when the scene was cued late (run.ts).
  { criterion: 'committed the most fs transactions per second', metric: 'txPerSec', better: 'higher', fmt: (v) => v.toFixed(0), unit: ' tx/s' },
  { criterion: 'failed the fewest fs transactions', metric: 'txFailed', better: 'lower', fmt: (v) => v.toFixed(0), unit: '' },
  { criterion: 'had the lowest allocation p99', metric: 'allocP99', better: 'lower', fmt: msOfUs, unit: ' ms' },
  { criterion: 'left the least memory idle', metric: 'idleMean', better: 'lower', fmt: (v) => v.toFixed(1), unit: ' pages' },
  { criterion: 'killed the fewest bystanders', metric: 'bystanderKills', better: 'lower', fmt: (v) => v.toFixed(0), unit: '' },
];

function range(s: Spread, fmt: (v: number) => string, unit: string): string {
  return s.min === s.max ? `${fmt(s.median)}${unit} in every run` : `median ${fmt(s.median)}${unit}, ${fmt(s.min)}–${fmt(s.max)}${unit}`;
}

function list(names: string[]): string {
  return names.length <= 1 ? (names[0] ?? '') : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

/**
 * Which policy is best by each criterion. Stated only where the best
 * median's range overlaps no other policy's range; otherwise the report
 * names the policies that overlap it and ranks none. A single run per
 * policy has no range: nothing is ranked then.
 */
export function criteria(policies: readonly PolicySummary[]): Criterion[] {
  const ranked = policies.filter((p) => p.complete > 0);
  const runs = Math.min(...ranked.map((p) => p.complete));
  return CRITERIA.map(({ criterion, metric, better, fmt, unit }) => {
    const head = { criterion, metric, better };
    if (ranked.length < 2) return { ...head, best: null, text: 'not ranked: fewer than two policies completed a run' };
    if (runs < 2) return { ...head, best: null, text: 'not ranked: one run per policy gives no range (run with --repeat 2 or more)' };
    const sign = better === 'higher' ? -1 : 1;
    const order = [...ranked].sort((a, b) => sign * (a.spread[metric]!.median - b.spread[metric]!.median));
    const top = order[0]!;
    const s = top.spread[metric]!;
    const overlapping = order.slice(1).filter((p) => overlaps(s, p.spread[metric]!));
    if (overlapping.length === 0) {
      const next = order[1]!;
      return { ...head, best: top.name, text: `${top.name} (${range(s, fmt, unit)}; next, ${next.name}: ${range(next.spread[metric]!, fmt, unit)})` };
    }
    const tied = [top, ...overlapping];
    const same = tied.every((p) => p.spread[metric]!.min === s.min && p.spread[metric]!.max === s.max && s.min === s.max);
    return {
      ...head,
      best: null,
      text: same
        ? `no single best: ${list(tied.map((p) => p.name))} tie at ${fmt(s.median)}${unit} in every run`
        : `no single best: the ranges of ${list(tied.map((p) => p.name))} overlap (${tied.map((p) => `${p.name} ${fmt(p.spread[metric]!.min)}–${fmt(p.spread[metric]!.max)}`).join(', ')}${unit})`,
    };
  });
}
