/**
 * The OOM killer on real workers: who is chosen, how a kill is delivered,
 * one victim at a time, and who never triggers one.
 */
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { GFP, onWarning, Pool, type Warning } from '../../../src/index.js';
import { takeAll } from '../../fixtures/pool.js';
import { until } from '../../fixtures/workers.js';

const fixture = new URL('../../fixtures/oom-worker.mjs', import.meta.url);
const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

interface Spawned {
  worker: Worker;
  task: number;
  exited: Promise<number>;
  messages: any[];
}

async function spawn(pool: Pool, name: string, pages: number, extra: object = {}): Promise<Spawned> {
  const worker = new Worker(fixture, { workerData: { handle: pool.handle, name, pages, ...extra } });
  workers.push(worker);
  const messages: any[] = [];
  worker.on('message', (m) => messages.push(m));
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  const first = await new Promise<any>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return { worker, task: first.task, exited, messages };
}

function newPool(oom: object | boolean = true) {
  return Pool.create({ size: 1000 * 4096, maxOrder: 6, watermarks: { min: 10, low: 20, high: 30 }, pcp: false, oom });
}

describe('the OOM killer', () => {
  it('kills the task with the most pages, its pages come back, and the allocation succeeds', async () => {
    const pool = newPool();
    const kills: Warning[] = [];
    const off = onWarning((w) => w.kind === 'oom-kill' && kills.push(w));
    const a = await spawn(pool, 'ten', 100);
    const b = await spawn(pool, 'thirty', 300);
    const c = await spawn(pool, 'fifty', 500);
    const mine = takeAll(pool, GFP.NOWAIT | GFP.HIGH);
    const page = await pool.allocAsync(GFP.KERNEL, 0, { timeoutMs: 10_000 });
    expect(await c.exited).toBe(137);
    expect(pool.stats().vmstat.oom_kill).toBe(1);
    expect(a.worker.threadId).toBeGreaterThan(0);
    await until(() => kills.length > 0); // warnings are delivered from the event loop
    off();
    expect(kills[0]?.message).toMatch(/Out of memory: Killed task \d+ \(fifty\) total-pages:500 oom_score_adj:0/);
    expect((kills[0] as any).tasks.map((t: any) => t.name)).toEqual(expect.arrayContaining(['ten', 'thirty', 'fifty']));
    pool.free(page);
    pool.freeBulk(mine);
    for (const s of [a, b]) s.worker.postMessage('free');
    await until(() => [a, b].every((s) => s.messages.some((m) => m.freed)));
    expect(pool.stats().freePages).toBe(pool.totalPages);
    pool.checkInvariants();
  });

  it('oomScoreAdj -1000 exempts the biggest: the 30 % task dies instead', async () => {
    const pool = newPool();
    const a = await spawn(pool, 'ten', 100);
    const b = await spawn(pool, 'thirty', 300);
    const c = await spawn(pool, 'fifty', 500, { oomScoreAdj: -1000 });
    const mine = takeAll(pool, GFP.NOWAIT | GFP.HIGH);
    const page = await pool.allocAsync(GFP.KERNEL, 0, { timeoutMs: 10_000 });
    expect(await b.exited).toBe(137);
    expect(pool.stats().vmstat.oom_kill).toBe(1);
    pool.free(page);
    pool.freeBulk(mine);
    for (const s of [a, c]) s.worker.postMessage('free');
  });

  it('chooses no new victim while one is outstanding', async () => {
    const pool = newPool({ reaper: false });
    await spawn(pool, 'ten', 100);
    await spawn(pool, 'thirty', 300);
    const c = await spawn(pool, 'fifty', 500, { onKill: 'ignore' });
    const mine = takeAll(pool, GFP.NOWAIT | GFP.HIGH);
    await expect(pool.allocAsync(GFP.KERNEL, 0, { timeoutMs: 400 })).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(pool.stats().vmstat.oom_kill).toBe(1);
    expect(pool.stats().vmstat.oom_invoked).toBeGreaterThan(1);
    // The victim's callback ran on its own thread; its report comes as a message.
    await until(() => c.messages.some((m) => m.killed !== undefined));
    expect(c.messages.some((m) => m.killed?.name === 'fifty')).toBe(true);
    pool.freeBulk(mine);
  });

  it('NOFS, costly-order and RETRY_MAYFAIL callers never trigger a kill', async () => {
    const pool = newPool();
    await spawn(pool, 'fifty', 500);
    const mine = takeAll(pool, GFP.NOWAIT | GFP.HIGH);
    await expect(pool.allocAsync(GFP.NOFS, 0, { timeoutMs: 200 })).rejects.toMatchObject({ name: 'TimeoutError' });
    await expect(pool.allocAsync(GFP.KERNEL, 4)).rejects.toMatchObject({ code: 'ENOMEM' });
    await expect(pool.allocAsync(GFP.KERNEL | GFP.RETRY_MAYFAIL)).rejects.toMatchObject({ code: 'ENOMEM' });
    const s = pool.stats().vmstat;
    expect(s.oom_kill).toBe(0);
    expect(s.oom_invoked).toBe(0);
    pool.freeBulk(mine);
  });

  it('panicOnOom throws a fatal error instead of killing', async () => {
    const pool = newPool({ panicOnOom: true });
    await spawn(pool, 'fifty', 500);
    const mine = takeAll(pool, GFP.NOWAIT | GFP.HIGH);
    await expect(pool.allocAsync(GFP.KERNEL)).rejects.toMatchObject({ code: 'ERR_OOM_PANIC' });
    expect(pool.stats().vmstat.oom_kill).toBe(0);
    pool.freeBulk(mine);
  });
});
