/**
 * kswapd under a steady load: woken below `low`, it reclaims until `high`
 * on the event loop, so free pages stay between the marks and allocators
 * rarely reclaim themselves.
 */
import { describe, expect, it } from 'vitest';
import { GFP, type Page, Pool } from '../../../src/index.js';

describe('kswapd', () => {
  it('holds free pages between low and high under a steady load with a shrinker', async () => {
    const pool = Pool.create({ size: 1024 * 4096, watermarks: { min: 32, low: 64, high: 96 }, pcp: false });
    const cache: Page[] = [];
    pool.registerShrinker({
      name: 'lru',
      needs: 'none',
      batch: 16,
      count: () => cache.length,
      scan: (n) => {
        let freed = 0;
        while (freed < n && cache.length > 0) {
          pool.free(cache.shift()!);
          freed++;
        }
        return freed;
      },
    });
    const trace: number[] = [];
    for (let i = 0; i < 4000; i++) {
      cache.push(pool.alloc(GFP.KERNEL));
      if (i % 8 === 7) {
        trace.push(pool.stats().freePages);
        await new Promise((r) => setImmediate(r));
      }
    }
    const s = pool.stats();
    const steady = trace.slice(trace.length / 2);
    const mean = steady.reduce((a, b) => a + b, 0) / steady.length;
    console.log(
      `kswapd trace (free pages every 8 allocations, 2nd half): min ${Math.min(...steady)} mean ${mean.toFixed(1)} max ${Math.max(...steady)}; ` +
        `watermarks ${JSON.stringify(s.watermarks)}; kswapd_wakeups ${s.vmstat.kswapd_wakeups} kswapd_runs ${s.vmstat.kswapd_runs} ` +
        `pgsteal_kswapd ${s.vmstat.pgsteal_kswapd} pgsteal_direct ${s.vmstat.pgsteal_direct} allocstall ${s.vmstat.allocstall}\n` +
        `trace: ${steady.slice(0, 60).join(' ')}`,
    );
    expect(s.vmstat.kswapd_runs).toBeGreaterThan(0);
    expect(s.vmstat.pgsteal_kswapd).toBeGreaterThan(s.vmstat.pgsteal_direct);
    expect(Math.min(...steady)).toBeGreaterThanOrEqual(s.watermarks.min);
    expect(mean).toBeGreaterThan(s.watermarks.min);
    expect(mean).toBeLessThan(s.watermarks.high + 16);
    pool.close();
  });
});
