/**
 * The 2015 deadlock, reproduced and resolved (kernel-mm.md §3.6, §6.5-6.6):
 * a task loops in a NOFS allocation while holding the filesystem mutex;
 * the OOM victim is blocked on that mutex and cannot exit. With only a
 * cooperative kill nothing moves (the stall warning fires); the reaper or
 * Weiner's victim timeout recovers; a reservation taken before the mutex
 * means it never happens.
 */
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { GFP, onWarning, type Page, Pool, SharedMutex, type Warning } from '../../../src/index.js';
import { eventually } from '../../fixtures/workers.js';

const fixture = new URL('../../fixtures/deadlock-worker.mjs', import.meta.url);
const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

interface Cast {
  pool: Pool;
  mutex: SharedMutex;
  events: any[];
  warnings: Warning[];
  holder: Worker;
  victim: Worker;
  bystander?: Worker;
  mine: Page[];
  stop: () => void;
}

async function stage(oom: object, opts: { bystander?: boolean; reserve?: number } = {}): Promise<Cast> {
  const pool = Pool.create({
    size: 1000 * 4096,
    maxOrder: 4,
    watermarks: { min: 10, low: 20, high: 30 },
    pcp: false,
    oom,
    stallWarnMs: 1000,
  });
  const mutex = new SharedMutex({ name: 'fs', reclaimFs: true });
  const events: any[] = [];
  const warnings: Warning[] = [];
  const stop = onWarning((w) => warnings.push(w));
  const spawn = (role: string, data: object) => {
    const w = new Worker(fixture, { workerData: { handle: pool.handle, mutex: mutex.handle, role, ...data } });
    workers.push(w);
    w.on('message', (m) => events.push(m));
    w.on('exit', (code) => events.push({ role, exit: code }));
    return w;
  };
  const victim = spawn('victim', { pages: 600 });
  const bystander = opts.bystander ? spawn('bystander', { pages: 200 }) : undefined;
  const holder = spawn('holder', { need: 40, reserve: opts.reserve ?? 0 });
  await eventually(() => events.filter((e) => e.held !== undefined || e.locked).length === (opts.bystander ? 3 : 2), 10_000);
  // Everything else is taken, so the holder's transaction finds nothing free.
  const mine: Page[] = [];
  for (;;) {
    try {
      mine.push(pool.alloc(GFP.NOWAIT | GFP.HIGH | GFP.MEMALLOC));
    } catch {
      break;
    }
  }
  victim.postMessage('go');
  await eventually(() => mutex.waiters > 0, 5000);
  holder.postMessage('go');
  return { pool, mutex, events, warnings, holder, victim, bystander, mine, stop };
}

/** An FS-capable allocation from the main thread invokes the OOM killer. */
function trigger(c: Cast, ms: number): Promise<unknown> {
  return c.pool.allocAsync(GFP.KERNEL, 0, { timeoutMs: ms }).then(
    (p) => c.pool.free(p),
    (e) => e,
  );
}

describe('the 2015 TIF_MEMDIE deadlock', () => {
  it('with a cooperative kill only, nothing moves: the victim is blocked on the lock the looping allocator holds', async () => {
    const c = await stage({ reaper: false });
    const t = trigger(c, 2500);
    const stalled = await eventually(() => c.warnings.some((w) => w.kind === 'alloc-stall'), 8000);
    await t;
    c.stop();
    const s = c.pool.stats();
    expect(stalled).toBe(true); // the holder's NOFS allocation reported its stall
    expect(s.vmstat.oom_kill).toBe(1); // one victim, and no other while it is outstanding
    expect(c.events.some((e) => e.committed)).toBe(false);
    expect(c.events.some((e) => e.role === 'victim' && e.exit !== undefined)).toBe(false);
    const kill = c.warnings.find((w) => w.kind === 'oom-kill') as any;
    const row = kill.tasks.find((r: any) => r.name === 'victim');
    expect(row.blockedOn).toBe(c.mutex.id); // the report explains why the victim cannot exit
    expect(c.mutex.holder).toBe(kill.tasks.find((r: any) => r.name === 'holder').id);
  });

  it('the OOM reaper takes the stuck victim\'s pages, and the transaction commits', async () => {
    const c = await stage({ reaper: true, reaperDelayMs: 300 });
    void trigger(c, 5000);
    expect(await eventually(() => c.events.some((e) => e.committed), 8000)).toBe(true);
    c.stop();
    expect(c.pool.stats().vmstat.oom_reaped).toBeGreaterThan(0);
    expect(await eventually(() => c.events.some((e) => e.role === 'victim' && e.exit === 137), 5000)).toBe(true);
  });

  it("Weiner's victim timeout recovers too — by killing a bystander", async () => {
    const c = await stage({ reaper: false, victimTimeoutMs: 500 }, { bystander: true });
    void trigger(c, 5000);
    expect(await eventually(() => c.events.some((e) => e.committed), 8000)).toBe(true);
    c.stop();
    expect(c.pool.stats().vmstat.oom_kill).toBeGreaterThanOrEqual(2);
    expect(await eventually(() => c.events.some((e) => e.role === 'bystander' && e.exit === 137), 5000)).toBe(true);
  });

  it('with a reservation taken before the mutex, the situation never arises', async () => {
    const c = await stage({ reaper: false }, { reserve: 60 });
    expect(await eventually(() => c.events.some((e) => e.committed), 3000)).toBe(true);
    c.stop();
    expect(c.pool.stats().vmstat.oom_kill).toBe(0);
    expect(c.warnings.some((w) => w.kind === 'alloc-stall')).toBe(false);
    expect(await eventually(() => c.events.some((e) => e.survived), 3000)).toBe(true);
  });
});
