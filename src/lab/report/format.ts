/** Number formatting and the columns of the comparison table, shared by the terminal, Markdown and HTML. */
import type { PolicyResult } from '../collect.js';

/** µs as 850µs, 1.2ms, 3.40s. */
export function us(v: number): string {
  if (!(v > 0)) return '0';
  if (v < 1000) return `${Math.round(v)}µs`;
  if (v < 1_000_000) return `${(v / 1000).toFixed(v < 10_000 ? 1 : 0)}ms`;
  return `${(v / 1_000_000).toFixed(2)}s`;
}

export function ms(v: number): string {
  return us(v * 1000);
}

export function num(v: number, digits = 0): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '-';
}

export function pct(v: number, digits = 1): string {
  return `${num(v, digits)}%`;
}

export interface Column {
  header: string;
  /** One line on what it measures (the README's "how to read the table", the HTML's title). */
  help: string;
  value(r: PolicyResult): string;
}

export const COLUMNS: Column[] = [
  { header: 'policy', help: 'the policy (a star: interrupted)', value: (r) => r.name + (r.partial ? '*' : '') },
  { header: 'tx/s', help: 'fs transactions committed per second', value: (r) => num(r.metrics.txPerSec) },
  { header: 'failed', help: 'fs transactions that failed part-way with ENOMEM', value: (r) => num(r.metrics.txFailed) },
  { header: 'ro', help: 'times the filesystem went read-only after a failed transaction', value: (r) => num(r.metrics.readOnlyFlips) },
  { header: 'p50', help: 'allocation latency, median (all workloads, corrected for coordinated omission)', value: (r) => us(r.metrics.alloc.p50) },
  { header: 'p99', help: 'allocation latency, 99th percentile', value: (r) => us(r.metrics.alloc.p99) },
  { header: 'p99.9', help: 'allocation latency, 99.9th percentile', value: (r) => us(r.metrics.alloc.p999) },
  { header: 'max', help: 'slowest allocation (one still stuck at the end counts until then)', value: (r) => us(r.metrics.alloc.max) },
  { header: '>1s', help: 'allocations that took over a second', value: (r) => num(r.metrics.stalls) },
  { header: 'livelock', help: 'watchdog: periods with no successful fs/user/hog operation for the watchdog time; longest such period', value: (r) => (r.metrics.livelocks ? `${r.metrics.livelocks} (${ms(r.metrics.longestNoProgressMs)})` : '0') },
  { header: 'oom(!hog)', help: 'OOM kills, and in brackets kills of a task that was not the hog', value: (r) => `${r.metrics.oomKills} (${r.metrics.nonHogKills})` },
  { header: 'peak', help: 'peak pool use', value: (r) => pct(r.metrics.peakUsePct, 0) },
  { header: 'idle', help: 'pages set aside by the policy and unused, time-averaged (reservations, preallocation, mempool elements)', value: (r) => num(r.metrics.idleMean, 1) },
  { header: 'psi s/f', help: 'PSI memory: share of the run with some / all tasks stalled in reclaim (pool.stats().psi totals)', value: (r) => `${num(r.metrics.psiSomePct, 1)}/${num(r.metrics.psiFullPct, 1)}` },
];

/** A plain-text table, columns padded (the terminal). */
export function textTable(results: PolicyResult[]): string {
  const rows = [COLUMNS.map((c) => c.header), ...results.map((r) => COLUMNS.map((c) => c.value(r)))];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((row) => [...row[i]!].length)));
  const line = (row: string[]) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}
