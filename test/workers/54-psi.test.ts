/**
 * PSI on the real pool: a worker stalled waiting for memory makes `some`
 * rise; at idle the averages decay; a trigger fires at most once per window.
 */
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { GFP, type Page, Pool } from '../../src/index.js';

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
    const off = pool.psiTrigger({ kind: 'some', stallUs: 100_000, windowUs: 500_000 }, () => fired.push(Date.now()));
    const before = pool.stats().psi.some.total;
    // The worker's NOFS allocation waits (linux-4.0) until we free a page,
    // 2.4 s later: past the first 2 s PSI sample.
    const w = new Worker(new URL('../fixtures/alloc-worker.mjs', import.meta.url), {
      workerData: { handle: pool.handle, scenario: 'alloc-once', gfp: GFP.NOFS },
    });
    const done = new Promise<any>((resolve) => w.once('message', resolve));
    await new Promise((r) => setTimeout(r, 2400));
    const during = pool.stats().psi;
    pool.free(held.pop()!);
    expect((await done).ok).toBe(true);
    await w.terminate();
    off();
    const stalledUs = during.some.total - before;
    console.log(`PSI during a ~2.4 s stall: some.total +${stalledUs} us, avg10 ${during.some.avg10}%; trigger fired ${fired.length} times`);
    expect(stalledUs).toBeGreaterThan(1_500_000);
    expect(during.some.avg10).toBeGreaterThan(0);
    expect(during.full.total).toBe(0); // the main thread was not stalled
    // At most one event per 500 ms window, and never two within a window.
    expect(fired.length).toBeGreaterThanOrEqual(1);
    expect(fired.length).toBeLessThanOrEqual(Math.ceil(stalledUs / 500_000) + 1);
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
