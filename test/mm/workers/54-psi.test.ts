/**
 * PSI on the real pool: a worker stalled waiting for memory makes `some`
 * rise; at idle the averages decay; a trigger fires at most once per window.
 */
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { GFP, type Page, Pool } from '../../../src/index.js';
import { until } from '../../fixtures/workers.js';

describe('PSI', () => {
  it('some rises during a stall, decays at idle, and a trigger fires at most once per window', async () => {
    const pool = Pool.create({ size: 64 * 4096, watermarks: { min: 0, low: 0, high: 0 }, pcp: false });
    const held: Page[] = [];
    for (;;) {
      try {
        held.push(pool.alloc(GFP.NOWAIT));
      } catch {
        break;
      }
    }
    const fired: number[] = [];
    const off = pool.psiTrigger({ kind: 'some', stallUs: 100_000, windowUs: 500_000 }, () => fired.push(performance.now()));
    const before = pool.stats().psi.some.total;
    // The worker's NOFS allocation waits (linux-4.0) until we free a page.
    const w = new Worker(new URL('../../fixtures/alloc-worker.mjs', import.meta.url), {
      workerData: { handle: pool.handle, scenario: 'alloc-once', gfp: GFP.NOFS },
    });
    const done = new Promise<any>((resolve) => w.once('message', resolve));
    // Hold the stall 2.4 s from when PSI first shows it, however long the
    // worker took to start: past a 2 s PSI sample, whose period it then
    // fills at least in part.
    await until(() => pool.stats().psi.some.total > before);
    const seen = performance.now();
    await new Promise((r) => setTimeout(r, 2400));
    const during = pool.stats().psi;
    const heldUs = (performance.now() - seen) * 1000;
    pool.free(held.pop()!);
    expect((await done).ok).toBe(true);
    await w.terminate();
    off();
    const stalledUs = during.some.total - before;
    const totalUs = pool.stats().psi.some.total - before;
    console.log(`PSI during a stall held ${(heldUs / 1e6).toFixed(2)} s: some.total +${stalledUs} us, avg10 ${during.some.avg10}%; trigger fired ${fired.length} times`);
    // The worker was stalled all the time we held it, bar the moments its
    // slow path spends between two waits (where a loaded machine may also
    // preempt it): PSI counts most of it.
    expect(stalledUs).toBeGreaterThan(heldUs / 2);
    expect(during.some.avg10).toBeGreaterThan(0);
    expect(during.full.total).toBe(0); // the main thread was not stalled
    // At most one event per 500 ms window, and never two within a window
    // (the callback runs right after the poll reads the clock; 50 ms of slack).
    expect(fired.length).toBeGreaterThanOrEqual(1);
    expect(fired.length).toBeLessThanOrEqual(Math.ceil(totalUs / 500_000) + 1);
    for (let i = 1; i < fired.length; i++) expect(fired[i]! - fired[i - 1]!).toBeGreaterThanOrEqual(450);
    // Idle: the averages decay at the next 2 s samples.
    const peak = pool.stats().psi.some.avg10;
    await new Promise((r) => setTimeout(r, 4100));
    const after = pool.stats().psi;
    console.log(`PSI at idle: some.avg10 ${peak}% -> ${after.some.avg10}% after 4 s`);
    expect(after.some.avg10).toBeLessThan(peak);
    pool.freeBulk(held);
  });
});
