/**
 * Latency histograms: node:perf_hooks' HDR histograms (clonable across
 * threads, mergeable with add()), in microseconds, with HdrHistogram's
 * expected-interval correction for coordinated omission: a caller paced at
 * one operation per `expected` µs that stalled for v µs also kept the
 * operations it would have issued meanwhile from being measured, so they
 * are recorded too (v − expected, v − 2·expected, … down to expected).
 */
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';

/** Longest latency kept: 10 minutes. */
const HIGHEST_US = 600_000_000;
/** Synthetic samples one stall may add (bounds the work of a very long stall). */
const MAX_FILL = 100_000;

export function newHistogram(): RecordableHistogram {
  return createHistogram({ lowest: 1, highest: HIGHEST_US, figures: 2 });
}

/** Records `us` and the samples a paced caller could not issue while it waited. */
export function recordCorrected(h: RecordableHistogram, us: number, expectedUs: number): void {
  const v = Math.min(HIGHEST_US, Math.max(1, Math.round(us)));
  h.record(v);
  if (!(expectedUs > 0) || v <= expectedUs) return;
  let n = 0;
  for (let missing = v - expectedUs; missing >= expectedUs && n < MAX_FILL; missing -= expectedUs, n++) h.record(Math.round(missing));
}

export const PERCENTILES = [50, 90, 99, 99.9, 99.99] as const;

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  /** [percentile, µs] for the percentile chart. */
  curve: Array<[number, number]>;
}

const CURVE = [0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100];

export function summarize(h: RecordableHistogram): LatencySummary {
  if (h.count === 0) return { count: 0, p50: 0, p99: 0, p999: 0, max: 0, curve: [] };
  return {
    count: h.count,
    p50: h.percentile(50),
    p99: h.percentile(99),
    p999: h.percentile(99.9),
    max: h.max,
    curve: CURVE.map((p) => [p, p === 0 ? h.min : h.percentile(p)] as [number, number]),
  };
}
