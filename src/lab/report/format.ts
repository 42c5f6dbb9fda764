/**
 * Number formatting and the comparison table's columns, shared by the
 * terminal, Markdown and HTML. A cell is a policy's median over its runs
 * and, when the runs differ, their min–max; every header carries its unit.
 */
import { DEADLOCK_OUTCOMES } from '../deadlock.js';
import type { MetricKey, PolicySummary, Spread } from './stats.js';
import { msOfUs, num } from './units.js';

export { ms, msOfUs, num, pct, us } from './units.js';

export interface Cell {
  /** The median (or the only value). */
  value: string;
  /** min–max over the runs, when they differ; null otherwise. */
  range: string | null;
}

export interface Column {
  /** With its unit: 'tx/s', 'alloc p99 (ms)'. */
  header: string;
  /** One line on what it measures (the README's "how to read the table", the HTML's title). */
  help: string;
  cell(p: PolicySummary): Cell;
}

/** A median and its min–max (left out when they read the same). */
export function spreadCell(s: Spread | null, fmt: (v: number) => string): Cell {
  if (s === null) return { value: '-', range: null };
  const lo = fmt(s.min);
  const hi = fmt(s.max);
  return { value: fmt(s.median), range: lo === hi ? null : `${lo}–${hi}` };
}

function metric(key: MetricKey, fmt: (v: number) => string) {
  return (p: PolicySummary): Cell => spreadCell(p.spread[key], fmt);
}

const int = (v: number) => num(v);
const one = (v: number) => num(v, 1);

/** "livelock 3/3", "recovered 2/3 · failed 1/3". */
export function deadlockCell(p: PolicySummary): Cell {
  const n = Object.values(p.deadlock).reduce((a, b) => a + (b ?? 0), 0);
  if (n === 0) return { value: p.failure ? 'run failed' : '-', range: null };
  const parts = DEADLOCK_OUTCOMES.filter((o) => p.deadlock[o]).map((o) => `${o} ${p.deadlock[o]}/${n}`);
  return { value: parts[0]!, range: parts.length > 1 ? parts.slice(1).join(' · ') : null };
}

export const COLUMNS: Column[] = [
  {
    header: 'policy',
    help: 'the policy (a star: interrupted; FAILED: a hook of its module threw)',
    cell: (p) => ({ value: p.name + (p.failure ? ' FAILED' : p.runs.some((r) => r.partial) ? '*' : ''), range: p.runs.length > 1 ? `${p.complete} of ${p.runs.length} runs` : null }),
  },
  { header: 'tx/s', help: 'fs transactions committed per second', cell: metric('txPerSec', int) },
  { header: 'failed tx', help: 'fs transactions that failed part-way with ENOMEM (each makes the filesystem go read-only)', cell: metric('txFailed', int) },
  { header: 'alloc p99 (ms)', help: 'allocation latency, 99th percentile, all workloads, corrected for coordinated omission', cell: metric('allocP99', msOfUs) },
  { header: 'alloc max (ms)', help: 'slowest allocation (one still stuck at the end counts until then)', cell: metric('allocMax', msOfUs) },
  // A no-break space keeps a number and its unit on one line of a wrapped header.
  { header: 'allocs over 1\u00a0s', help: 'allocations that took over a second', cell: metric('stalls', int) },
  { header: '2015 deadlock (runs)', help: 'what the staged 2015 scene came to, in how many runs: livelock, recovered, failed, never happened, stuck, not staged', cell: deadlockCell },
  { header: 'OOM kills', help: 'OOM kills in the run', cell: metric('oomKills', int) },
  { header: 'bystanders killed', help: 'OOM kills of a task that was not the hog', cell: metric('bystanderKills', int) },
  { header: 'idle (pages)', help: 'pages set aside by the policy and unused, time-averaged (reservations, preallocation, mempool elements)', cell: metric('idleMean', one) },
  { header: 'PSI some (%)', help: 'PSI memory: share of the run with some task stalled in reclaim, OOM or a reservation wait', cell: metric('psiSomePct', one) },
];

/**
 * A plain-text table, columns padded (the terminal): each policy's medians
 * on its line, and below it the min–max of the cells whose runs differ.
 */
export function textTable(policies: readonly PolicySummary[], columns: readonly Column[] = COLUMNS): string {
  const head = columns.map((c) => c.header);
  const body = policies.flatMap((p) => {
    const cells = columns.map((c) => c.cell(p));
    const lines = [cells.map((c) => c.value)];
    if (cells.some((c) => c.range !== null)) lines.push(cells.map((c) => c.range ?? ''));
    return lines;
  });
  const rows = [head, ...body];
  const widths = columns.map((_, i) => Math.max(...rows.map((row) => [...row[i]!].length)));
  const line = (row: string[]) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
