/**
 * metricsOf(pool): Prometheus text exposition format, checked with a
 * parser; and the prom-client collector, which must agree with it.
 */
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { GFP, METRICS_CONTENT_TYPE, metricsOf, type Page, Pool } from '../../src/index.js';
import { VMSTAT_NAMES } from '../../src/mm/stats/vmstat.js';
import { collectPoolMetrics } from '../../src/service/prom-client.js';
import { expectCode } from '../fixtures/expect.js';
import { takeAll } from '../fixtures/pool.js';

interface Family {
  name: string;
  help: string;
  type: string;
  metrics: { value: string; labels?: Record<string, string> }[];
}
const parse = (text: string) => parsePrometheusTextFormat(text) as Family[];

/** name -> samples as "label=value,..." -> number */
function index(families: Family[]): Map<string, Map<string, number>> {
  const m = new Map<string, Map<string, number>>();
  for (const f of families) {
    const s = new Map<string, number>();
    for (const x of f.metrics) {
      const key = Object.entries(x.labels ?? {})
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
      s.set(key, Number(x.value));
    }
    m.set(f.name, s);
  }
  return m;
}

let pool: Pool;
afterEach(() => pool?.close());

describe('metricsOf(pool)', () => {
  it('parses as Prometheus text format, and the numbers are the pool’s', () => {
    pool = Pool.create({ size: '1MiB' });
    const held: Page[] = [pool.alloc(GFP.KERNEL, 3), ...takeAll(pool, GFP.NOWAIT)];
    for (const p of held.splice(1, 20)) pool.free(p);
    const s = pool.stats();
    const text = metricsOf(pool);
    expect(text.endsWith('\n')).toBe(true);
    const families = parse(text);
    const m = index(families);
    // Every family has HELP and a TYPE the parser understood.
    for (const f of families) {
      expect(f.help.length, f.name).toBeGreaterThan(0);
      expect(['GAUGE', 'COUNTER'], f.name).toContain(f.type);
      expect(f.name).toMatch(/^nofail_[a-z0-9_]+$/);
      if (f.type === 'COUNTER') expect(f.name).toMatch(/_total$/);
      for (const x of f.metrics) expect(Number.isFinite(Number(x.value)), `${f.name} ${x.value}`).toBe(true);
    }
    expect(m.get('nofail_pages')!.get('')).toBe(256);
    const byState = m.get('nofail_pages_by_state')!;
    expect(byState.get('state=free')).toBe(s.freePages);
    expect(byState.get('state=cached')).toBe(s.cachedPages);
    expect(byState.get('state=allocated')).toBe(s.allocatedPages);
    // The states add up to the pool, as stats() does.
    expect([...byState.values()].reduce((a, b) => a + b, 0)).toBe(s.totalPages);
    expect([...byState.values()].reduce((a, b) => a + b, 0)).toBe(256);
    expect(m.get('nofail_watermark_pages')!.get('level=min')).toBe(s.watermarks.min);
    expect(m.get('nofail_free_blocks')!.get('order=0')).toBe(s.buddyinfo[0]);
    expect(m.get('nofail_vmstat_pgalloc_total')!.get('')).toBe(s.vmstat.pgalloc);
    for (const name of VMSTAT_NAMES) expect(m.has(`nofail_vmstat_${name}_total`), name).toBe(true);
    expect(m.get('nofail_vmstat_oom_kill_total')!.get('')).toBe(0);
    expect(m.get('nofail_pressure_some_ratio')!.get('window=10s')).toBeGreaterThanOrEqual(0);
    expect(m.has('nofail_pressure_full_seconds_total')).toBe(true);
    expect(METRICS_CONTENT_TYPE).toMatch(/version=0\.0\.4/);
    for (const p of held) pool.free(p);
  });

  it('takes a prefix and constant labels, escaping label values', () => {
    pool = Pool.create({ size: '1MiB' });
    const text = metricsOf(pool, { prefix: 'svc_', labels: { pool: 'bodies "main"\\\n' } });
    const families = parse(text);
    expect(families.every((f) => f.name.startsWith('svc_'))).toBe(true);
    for (const f of families) for (const x of f.metrics) expect(x.labels?.pool).toBe('bodies "main"\\\n');
    expectCode(() => metricsOf(pool, { prefix: '9bad' }), 'ERR_OUT_OF_RANGE');
    expectCode(() => metricsOf(pool, { labels: { 'bad-name': 'x' } }), 'ERR_OUT_OF_RANGE');
    expectCode(() => metricsOf(pool, { labels: { __reserved: 'x' } }), 'ERR_OUT_OF_RANGE');
    expectCode(() => metricsOf(pool, { labels: { ok: 1 as never } }), 'ERR_INVALID_ARG_TYPE');
    expectCode(() => metricsOf(pool, { labels: { state: 'x' } }), 'ERR_OUT_OF_RANGE', /own metrics/);
  });

  it('merges several pools into one exposition, one HELP/TYPE per family', () => {
    pool = Pool.create({ size: '1MiB' });
    const other = Pool.create({ size: '512KiB' });
    try {
      const text = metricsOf([
        { pool, labels: { pool: 'a' } },
        { pool: other, labels: { pool: 'b' } },
      ]);
      expect(text.match(/^# TYPE nofail_pages gauge$/gm)).toHaveLength(1);
      const m = index(parse(text));
      expect(Object.fromEntries(m.get('nofail_pages')!)).toEqual({ 'pool=a': 256, 'pool=b': 128 });
      expect(m.get('nofail_pages_by_state')!.size).toBe(6);
      expectCode(() => metricsOf([{ pool, labels: { pool: 'a' } }, { pool: other, labels: { pool: 'a' } }]), 'ERR_OUT_OF_RANGE', /collide/);
      expectCode(() => metricsOf([{ pool, labels: { pool: 'a' } }, { pool: other, labels: { name: 'b' } }]), 'ERR_OUT_OF_RANGE', /same label names/);
      expectCode(() => metricsOf([]), 'ERR_INVALID_ARG_TYPE');
    } finally {
      other.close();
    }
  });
});

describe('prom-client collector', () => {
  it('registers the same families with the same values', async () => {
    pool = Pool.create({ size: '1MiB' });
    const held = takeAll(pool, GFP.NOWAIT).slice(0, 100);
    const registry = new Registry();
    const remove = await collectPoolMetrics(pool, { registry, labels: { pool: 'p1' } });
    const fromProm = index(parse(await registry.metrics()));
    const fromPool = index(parse(metricsOf(pool, { labels: { pool: 'p1' } })));
    expect([...fromProm.keys()].sort()).toEqual([...fromPool.keys()].sort());
    for (const name of ['nofail_pages', 'nofail_pages_by_state', 'nofail_watermark_pages', 'nofail_free_blocks', 'nofail_vmstat_pgalloc_total']) {
      expect(Object.fromEntries(fromProm.get(name)!), name).toEqual(Object.fromEntries(fromPool.get(name)!));
    }
    remove();
    expect(await registry.metrics()).toBe('\n');
    for (const p of held) pool.free(p);
  });

  it('collects several pools in one registry', async () => {
    pool = Pool.create({ size: '1MiB' });
    const other = Pool.create({ size: '512KiB' });
    try {
      const registry = new Registry();
      await collectPoolMetrics(
        [
          { pool, labels: { pool: 'a' } },
          { pool: other, labels: { pool: 'b' } },
        ],
        { registry, labels: { service: 'kv' } },
      );
      const m = index(parse(await registry.metrics()));
      expect(Object.fromEntries(m.get('nofail_pages')!)).toEqual({ 'pool=a,service=kv': 256, 'pool=b,service=kv': 128 });
    } finally {
      other.close();
    }
  });
});
