/**
 * The pool's state as Prometheus metric families, and their text
 * exposition format (version 0.0.4). One description of the metrics serves
 * metricsOf() and the prom-client collector (prom-client.ts), so the two
 * can never disagree on a name or a unit.
 *
 * Names follow Prometheus conventions: a `nofail_` prefix, base units
 * (pages are counted as pages, stall time in seconds), `_total` on
 * counters. Every vmstat event is a counter `nofail_vmstat_<name>_total`
 * (the OOM killer's are oom_invoked, oom_kill and oom_reaped).
 */
import { InvalidArgTypeError, OutOfRangeError } from '../errors.js';
import { validateOptions } from '../validators.js';
import { Pool, type PoolStats } from '../mm/index.js';

export type MetricType = 'gauge' | 'counter';

export interface MetricSample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface MetricFamily {
  /** Full name, prefix included. */
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly samples: readonly MetricSample[];
}

export interface MetricsOptions {
  /** Prepended to every name; default 'nofail_'. */
  prefix?: string;
  /** Labels added to every sample, e.g. { service: 'kv' }. For several pools in one exposition see metricsOf(). */
  labels?: Record<string, string>;
}

/** Label names the families use themselves; constant labels may not take them. */
const OWN_LABELS = new Set(['state', 'level', 'order', 'reason', 'window']);

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function resolve(o: MetricsOptions): { prefix: string; labels: Record<string, string> } {
  validateOptions(o, 'metrics options', ['prefix', 'labels'] satisfies (keyof MetricsOptions)[]);
  const prefix = o.prefix ?? 'nofail_';
  if (typeof prefix !== 'string' || (prefix !== '' && !NAME.test(prefix))) {
    throw new OutOfRangeError(`metrics prefix must match ${NAME.source} (or be empty); received ${String(prefix)}`);
  }
  const labels = o.labels ?? {};
  if (labels === null || typeof labels !== 'object') throw new InvalidArgTypeError('metrics labels must be an object');
  for (const [k, v] of Object.entries(labels)) {
    if (!LABEL.test(k) || k.startsWith('__')) throw new OutOfRangeError(`metrics label name ${JSON.stringify(k)} is not a valid Prometheus label name`);
    if (OWN_LABELS.has(k)) throw new OutOfRangeError(`metrics label name ${JSON.stringify(k)} is used by nofail's own metrics (${[...OWN_LABELS].join(', ')})`);
    if (typeof v !== 'string') throw new InvalidArgTypeError(`metrics label ${k} must be a string; received ${typeof v}`);
  }
  return { prefix, labels: { ...labels } };
}

/** The metric families of one stats() snapshot. */
export function metricFamilies(s: PoolStats, options: MetricsOptions = {}): MetricFamily[] {
  const { prefix, labels } = resolve(options);
  const out: MetricFamily[] = [];
  const one = (name: string, type: MetricType, help: string, value: number, extra?: Record<string, string>) =>
    out.push({ name: prefix + name, type, help, samples: [{ labels: { ...labels, ...extra }, value }] });
  const many = (name: string, type: MetricType, help: string, samples: [Record<string, string>, number][]) =>
    out.push({ name: prefix + name, type, help, samples: samples.map(([l, value]) => ({ labels: { ...labels, ...l }, value })) });

  one('pages', 'gauge', 'Pages in the pool.', s.totalPages);
  // The three states of stats(), which add up to the pool in every snapshot.
  many('pages_by_state', 'gauge', 'Pages by state: free in the buddy allocator, cached in per-thread page caches, allocated to callers (token reservations included); they add up to nofail_pages.', [
    [{ state: 'free' }, s.freePages],
    [{ state: 'cached' }, s.cachedPages],
    [{ state: 'allocated' }, s.allocatedPages],
  ]);
  one('reserved_pages', 'gauge', 'Pages held back by watermark reservations (raises every watermark).', s.reservedPages);
  one('reserved_token_pages', 'gauge', 'Pages held in token reservations (a part of the allocated state).', s.reservedTokens);
  many('watermark_pages', 'gauge', 'Zone watermarks in pages, before reservations are added.', [
    [{ level: 'min' }, s.watermarks.min],
    [{ level: 'low' }, s.watermarks.low],
    [{ level: 'high' }, s.watermarks.high],
  ]);
  many('free_blocks', 'gauge', 'Free blocks per order (/proc/buddyinfo).', s.buddyinfo.map((n, order) => [{ order: String(order) }, n]));
  one('tasks', 'gauge', 'Live tasks: attached threads and registered tasks.', s.tasks);
  one('threads', 'gauge', 'Threads attached to the pool.', s.threads);
  one('waiters', 'gauge', 'Allocations waiting for memory now.', s.zoneinfo.waiters);
  one('kswapd_failures', 'gauge', 'Consecutive kswapd runs that reclaimed nothing.', s.zoneinfo.kswapdFailures);
  one('allocs_total', 'counter', 'Successful allocations.', s.counters.allocs);
  one('frees_total', 'counter', 'Frees.', s.counters.frees);
  many('alloc_attempt_failures_total', 'counter', 'Zone allocation attempts refused, by reason (the slow path may still succeed).', [
    [{ reason: 'watermark' }, s.counters.allocFailWatermark],
    [{ reason: 'fragmented' }, s.counters.allocFailFragmented],
  ]);
  for (const [name, value] of Object.entries(s.vmstat)) {
    one(`vmstat_${name}_total`, 'counter', `vmstat event ${name} (see /proc/vmstat).`, value);
  }
  for (const kind of ['some', 'full'] as const) {
    const line = s.psi[kind];
    one(`pressure_${kind}_seconds_total`, 'counter', `PSI memory ${kind}: total stall time.`, line.total / 1e6);
    many(`pressure_${kind}_ratio`, 'gauge', `PSI memory ${kind}: share of wall time stalled, running average (avg10/avg60/avg300 / 100).`, [
      [{ window: '10s' }, line.avg10 / 100],
      [{ window: '60s' }, line.avg60 / 100],
      [{ window: '300s' }, line.avg300 / 100],
    ]);
  }
  return out;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** Text exposition format 0.0.4 of the given families. */
export function exposition(families: readonly MetricFamily[]): string {
  let text = '';
  for (const f of families) {
    text += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
    for (const sm of f.samples) {
      const l = Object.entries(sm.labels);
      const ls = l.length ? `{${l.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}` : '';
      text += `${f.name}${ls} ${formatValue(sm.value)}\n`;
    }
  }
  return text;
}

/** The content type of exposition(): what a /metrics handler sends. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export function formatMetrics(s: PoolStats, options: MetricsOptions = {}): string {
  return exposition(metricFamilies(s, options));
}

/** One pool of several in an exposition, told apart by its labels. */
export interface LabelledPool {
  pool: Pool;
  labels: Record<string, string>;
}

/**
 * The families of several pools merged: one HELP/TYPE per name, each
 * pool's samples under its own labels (which must differ from pool to
 * pool, or the series would collide).
 */
export function metricFamiliesOf(pools: readonly LabelledPool[], options: { prefix?: string } = {}): MetricFamily[] {
  if (!Array.isArray(pools) || pools.length === 0) throw new InvalidArgTypeError('pools must be a Pool or a non-empty array of { pool, labels }');
  validateOptions(options, 'metrics options', ['prefix']);
  const seen = new Set<string>();
  let keys: string | undefined;
  const merged = new Map<string, MetricFamily & { samples: MetricSample[] }>();
  for (const p of pools) {
    if (p === null || typeof p !== 'object' || typeof p.pool?.stats !== 'function') throw new InvalidArgTypeError('each entry must be { pool, labels }');
    const id = JSON.stringify(Object.entries(p.labels ?? {}).sort(([a], [b]) => (a < b ? -1 : 1)));
    if (seen.has(id)) throw new OutOfRangeError(`two pools have the same labels ${id}: their series would collide`);
    const k = JSON.stringify(Object.keys(p.labels ?? {}).sort());
    if (keys !== undefined && k !== keys) throw new OutOfRangeError(`every pool must have the same label names (${keys} vs ${k})`);
    keys = k;
    seen.add(id);
    for (const f of metricFamilies(p.pool.stats(), { ...options, labels: p.labels })) {
      const m = merged.get(f.name);
      if (m === undefined) merged.set(f.name, { ...f, samples: [...f.samples] });
      else m.samples.push(...f.samples);
    }
  }
  return [...merged.values()];
}

/**
 * The text exposition of one pool (with `options.labels` on every sample),
 * or of several pools told apart by their labels (see metricFamiliesOf):
 * what a /metrics handler sends, with METRICS_CONTENT_TYPE.
 */
export function metricsOf(pools: Pool | readonly LabelledPool[], options: MetricsOptions = {}): string {
  if (pools instanceof Pool) return formatMetrics(pools.stats(), options);
  if (options !== null && typeof options === 'object' && options.labels !== undefined) {
    throw new InvalidArgTypeError('metricsOf(pools): each pool has its own labels; options.labels is for a single pool');
  }
  return exposition(metricFamiliesOf(pools, options));
}
