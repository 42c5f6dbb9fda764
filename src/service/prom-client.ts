/**
 * A prom-client collector for a pool: the same families as metricsOf(pool)
 * (metrics.ts), registered as prom-client Gauges and Counters whose
 * collect() reads the pool at scrape time.
 *
 *   import { register } from 'prom-client';
 *   await collectPoolMetrics(pool, { registry: register });
 *   await collectPoolMetrics([{ pool: a, labels: { pool: 'bodies' } }, { pool: b, labels: { pool: 'cache' } }], { registry: register });
 *
 * prom-client is an optional peer dependency: it is passed in (or imported
 * by the caller), never required by nofail itself. One stats() snapshot
 * serves a whole scrape: it is reused for 100 ms.
 */
import type { Counter, Gauge, Registry } from 'prom-client';
import { InvalidArgTypeError } from '../errors.js';
import { validateOptions } from '../validators.js';
import { type LabelledPool, metricFamiliesOf, type MetricFamily, type MetricsOptions } from './metrics.js';
import type { Pool } from '../mm/index.js';

export interface PromClientOptions extends MetricsOptions {
  /** The registry to register with. */
  registry: Registry;
  /** The prom-client module (its Gauge and Counter classes); default: imported. */
  promClient?: { Gauge: typeof Gauge; Counter: typeof Counter };
}

/**
 * Registers the metrics of a pool, or of several (each with its own
 * labels), once per registry; returns a function that removes them.
 */
export async function collectPoolMetrics(pools: Pool | readonly LabelledPool[], options: PromClientOptions): Promise<() => void> {
  validateOptions(options, 'collectPoolMetrics options', ['registry', 'promClient', 'prefix', 'labels'] satisfies (keyof PromClientOptions)[]);
  if (options.registry === undefined) throw new InvalidArgTypeError('collectPoolMetrics: options.registry is required');
  const { registry, promClient, labels = {}, ...mo } = options;
  const sources: readonly LabelledPool[] = Array.isArray(pools)
    ? pools.map((p: LabelledPool) => ({ pool: p?.pool, labels: { ...labels, ...p?.labels } }))
    : [{ pool: pools as Pool, labels }];
  const families = () => metricFamiliesOf(sources, mo);
  const pc = promClient ?? (await import('prom-client'));
  let cached: { at: number; byName: Map<string, MetricFamily> } | undefined;
  const family = (name: string): MetricFamily | undefined => {
    const now = performance.now();
    if (cached === undefined || now - cached.at > 100) {
      cached = { at: now, byName: new Map(families().map((f) => [f.name, f])) };
    }
    return cached.byName.get(name);
  };
  const names: string[] = [];
  for (const f of families()) {
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
