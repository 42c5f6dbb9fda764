/**
 * A prom-client collector for a pool: the same families as pool.metrics()
 * (metrics.ts), registered as prom-client Gauges and Counters whose
 * collect() reads the pool at scrape time.
 *
 *   import { register } from 'prom-client';
 *   collectPoolMetrics(pool, { registry: register, labels: { pool: 'bodies' } });
 *
 * prom-client is an optional peer dependency: it is passed in (or imported
 * by the caller), never required by nofail itself. One stats() snapshot
 * serves a whole scrape: it is reused for 100 ms.
 */
import type { Counter, Gauge, Registry } from 'prom-client';
import { InvalidArgTypeError } from '../errors.js';
import { type MetricFamily, metricFamilies, type MetricsOptions } from '../metrics.js';
import type { Pool } from '../pool.js';

export interface PromClientOptions extends MetricsOptions {
  /** The registry to register with. */
  registry: Registry;
  /** The prom-client module (its Gauge and Counter classes); default: imported. */
  promClient?: { Gauge: typeof Gauge; Counter: typeof Counter };
}

/** Registers the pool's metrics; returns a function that removes them from the registry. */
export async function collectPoolMetrics(pool: Pool, options: PromClientOptions): Promise<() => void> {
  if (options === null || typeof options !== 'object' || options.registry === undefined) {
    throw new InvalidArgTypeError('collectPoolMetrics: options.registry is required');
  }
  const { registry, promClient, ...mo } = options;
  const pc = promClient ?? (await import('prom-client'));
  let cached: { at: number; byName: Map<string, MetricFamily> } | undefined;
  const family = (name: string): MetricFamily | undefined => {
    const now = performance.now();
    if (cached === undefined || now - cached.at > 100) {
      cached = { at: now, byName: new Map(metricFamilies(pool.stats(), mo).map((f) => [f.name, f])) };
    }
    return cached.byName.get(name);
  };
  const names: string[] = [];
  for (const f of metricFamilies(pool.stats(), mo)) {
    const labelNames = Object.keys(f.samples[0]?.labels ?? {});
    names.push(f.name);
    if (f.type === 'gauge') {
      new pc.Gauge({
        name: f.name,
        help: f.help,
        labelNames,
        registers: [registry],
        collect(this: Gauge) {
          for (const s of family(f.name)?.samples ?? []) this.set(s.labels, s.value);
        },
      });
    } else {
      new pc.Counter({
        name: f.name,
        help: f.help,
        labelNames,
        registers: [registry],
        collect(this: Counter) {
          this.reset();
          for (const s of family(f.name)?.samples ?? []) this.inc(s.labels, s.value);
        },
      });
    }
  }
  return () => {
    for (const n of names) registry.removeSingleMetric(n);
  };
}
