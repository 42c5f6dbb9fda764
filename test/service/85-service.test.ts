/**
 * The example service (examples/service.mjs) under autocannon on loopback,
 * with the pool far below the working set, for both body policies. The
 * checks are bench/service/leak.mjs's: no corrupted data end to end, every
 * refusal a 503 with Retry-After, and nothing leaks — judged by what can
 * leak: pages (none in flight after the run, none allocated once the cache
 * is dropped) and the server's live heap after a forced GC, against its
 * level after a warm-up. RSS is printed, not judged: it says how V8 sizes
 * its heaps as much as what the server keeps. (`npm run bench:service` is
 * the comparison with the baseline.)
 *
 * The load is a number of requests, not a duration, so that the run does
 * the same work on any machine. NOFAIL_SERVICE_REQUESTS sets it per policy
 * (default 2500, after a warm-up of 500; 0 skips).
 * Runs against dist/ (npm test builds it first).
 */
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { describe, expect, it } from 'vitest';
// @ts-expect-error -- a plain .mjs module without types
import { checkRun, formatRun, HEAP_GROWTH_MAX_MIB, HEAP_GROWTH_MIN_MIB, runPolicy } from '../../bench/service/leak.mjs';
import { requireDist } from '../fixtures/workers.js';

const requests = Number(process.env.NOFAIL_SERVICE_REQUESTS ?? 2500);

describe.skipIf(!(requests > 0))('example service under load', () => {
  for (const policy of ['loop', 'reserve']) {
    it(
      `${policy}: ${requests} PUT/GET/echo requests at 64 connections into a 2 MiB pool`,
      async () => {
        requireDist();
        const r = await runPolicy({ policy, requests, warmupRequests: 500, connections: 64, poolSize: '2MiB', budgetMs: 50, keys: 2000, maxBody: 512 * 1024 });
        console.log(formatRun(r));
        // The script's own verdict (the same checks as below, as text).
        expect(checkRun(r)).toEqual([]);
        // It ran, and it ran into memory pressure: reclaim took cache pages.
        expect(r.requests).toBe(requests);
        expect(r.after.cache.shrunk).toBeGreaterThan(0);
        // No corrupted data; plenty of responses were checked.
        expect(r.corrupt).toEqual([]);
        expect(r.checked).toBeGreaterThan(5);
        expect(r.after.served.badChecksum).toBe(0);
        // Every refusal was a 503 with Retry-After; nothing else went wrong.
        expect(r.unexpected).toEqual([]);
        expect(r.missingRetryAfter).toBe(0);
        expect(r.errors).toBe(0);
        expect(r.timeouts).toBe(0);
        // Every page back: nothing in flight, and none allocated once the
        // cache is dropped (allocatedPages counts what callers hold, not
        // the page caches).
        expect(r.after.inFlightPages).toBe(0);
        expect(r.dropped.cachePages).toBe(0);
        expect(r.dropped.allocatedPages).toBe(0);
        expect(r.dropped.freePages + r.dropped.cachedPages).toBe(r.dropped.totalPages);
        // The live heap after GC is back near its warm-up level: within a
        // tenth of the bytes the run admitted (HEAP_GROWTH_MIN_MIB to
        // HEAP_GROWTH_MAX_MIB). Keeping every body would grow it by all of
        // them, ten times the bound: the run admitted enough for that to
        // show. (How much it admits depends on how fast the machine is: the
        // pool is 8x overloaded, and a busy machine refuses more.)
        expect(r.bytesAdmitted).toBeGreaterThan(10 * HEAP_GROWTH_MIN_MIB * 2 ** 20);
        expect(r.bytesAdmitted).toBeGreaterThanOrEqual(10 * r.heapGrowthLimit);
        expect(r.heapGrowthLimit).toBeLessThanOrEqual(HEAP_GROWTH_MAX_MIB * 2 ** 20);
        expect(r.heapGrowth).toBeLessThan(r.heapGrowthLimit);
        // /metrics parses and carries the pool's and the service's families.
        const names = new Set(parsePrometheusTextFormat(r.metricsText).map((f) => f.name));
        for (const n of ['nofail_pages_by_state', 'nofail_vmstat_pgsteal_direct_total', 'nofail_pressure_some_ratio', 'kv_shed_total', 'kv_cache_pages']) {
          expect(names.has(n), n).toBe(true);
        }
      },
      180_000,
    );
  }
});
