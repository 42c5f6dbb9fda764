/**
 * One policy run, on the main thread: a fresh pool with the policy's
 * options, fresh workers, a sampler and watchdog, and a clean stop. The
 * main thread never blocks: it only reads the board and pool.stats(),
 * and waits on timers and messages.
 *
 * Stopping (end of the run, or the caller's AbortSignal, e.g. Ctrl-C):
 * STOP goes up on the board, workers finish their operation and post their
 * last histograms; those still stuck after GRACE_MS (blocked in the
 * allocator or on a lock) are terminated, and the allocation each was in
 * is recorded as lasting until then.
 */
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Pool, SharedMutex, onWarning, type PoolOptions, type PoolStats, type Warning } from '../index.js';
import { Board, BOARD_WORD, now, since, SLOT_WORD } from './board.js';
import { assignWorkloads, type LabOptions, type Shape, type Workload } from './config.js';
import { collect, type PolicyResult, type Sample, type SlotRecord } from './collect.js';
import type { Policy } from './policies/index.js';
import type { WorkerInit, WorkerMessage } from './protocol.js';

const WORKER_URL = new URL('./worker.js', import.meta.url);
/** How long stopping workers get to finish their operation before they are terminated. */
export const GRACE_MS = 300;
const READY_TIMEOUT_MS = 30_000;

/**
 * Where the fs workers' files go: NOFAIL_LAB_DIR, else /dev/shm (a tmpfs:
 * real files and real read/write/fsync calls, and unlinking them does not
 * wait for a disk's discard), else the OS temp directory.
 */
export function labDir(): string {
  const env = process.env.NOFAIL_LAB_DIR;
  if (env) return env;
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

export interface RunHooks {
  /** Abort the run (Ctrl-C): it stops at once and its result is marked partial. */
  signal?: AbortSignal;
  /** Every sample, for a live view. */
  onSample?(sample: Sample, stats: PoolStats, board: Board, slots: readonly SlotRecord[]): void;
}

/** The policy's pool options with the OOM timers scaled (config.ts, timeScale). */
export function poolOptionsOf(policy: Policy, shape: Shape): Pick<PoolOptions, 'behavior' | 'oom'> {
  const { behavior, oom } = policy.pool;
  if (oom === undefined || typeof oom === 'boolean') return { behavior, oom };
  const scaled = { ...oom };
  if (oom.reaper !== false) scaled.reaperDelayMs = Math.round((oom.reaperDelayMs ?? 2000) * shape.timeScale);
  if (oom.victimTimeoutMs) scaled.victimTimeoutMs = Math.round(oom.victimTimeoutMs * shape.timeScale);
  return { behavior, oom: scaled };
}

export async function runPolicy(policy: Policy, options: LabOptions, shape: Shape, hooks: RunHooks = {}): Promise<PolicyResult> {
  const pool = Pool.create({ size: options.poolBytes, ...poolOptionsOf(policy, shape), name: 'lab-main' });
  const mutex = new SharedMutex({ name: 'fs', reclaimFs: true });
  const workloads = assignWorkloads(options.workers, options.workloads);
  const setup = policy.setup?.(pool, shape, workloads.filter((w) => w === 'fs').length) ?? {};
  const dir = mkdtempSync(join(labDir(), 'nofail-lab-'));
  const board = new Board(workloads.length);
  const origin = now();
  const threadIds = new Set<number>();
  const warnings: Warning[] = [];
  const offWarnings = onWarning((w) => {
    if (threadIds.has(w.threadId)) warnings.push(w);
  });
  const slots: SlotRecord[] = workloads.map((workload: Workload, slot) => ({
    slot,
    workload,
    worker: null,
    gen: -1,
    hist: [],
    kills: [],
    exits: [],
    errors: 0,
    firstError: undefined,
    terminated: 0,
    inflightAtStop: [],
  }));
  let stopping = false;
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let readyLeft = slots.length;
  let onReady: () => void = () => {};
  const allReady = new Promise<void>((resolve) => (onReady = resolve));

  const spawn = (rec: SlotRecord, startOp: number): void => {
    rec.gen++;
    const gen = rec.gen;
    const init: WorkerInit = {
      handle: pool.handle,
      mutex: mutex.handle,
      shared: setup.shared,
      board: board.sab,
      origin,
      policy: policy.name,
      workload: rec.workload,
      slot: rec.slot,
      gen,
      startOp,
      shape,
      dir,
    };
    const worker = new Worker(WORKER_URL, { workerData: init, stdout: false, stderr: false });
    rec.worker = worker;
    threadIds.add(worker.threadId);
    board.set(rec.slot, SLOT_WORD.ALIVE, 1);
    board.set(rec.slot, SLOT_WORD.GEN, gen);
    rec.hist[gen] = null;
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'ready') {
        if (gen === 0 && --readyLeft === 0) onReady();
      } else if (m.type === 'killed') {
        rec.kills.push({ gen, at: m.at, exitedAt: null });
      } else {
        rec.hist[m.gen] = { alloc: m.alloc, op: m.op, opPlentiful: m.opPlentiful };
        if (m.type === 'final') {
          rec.errors += m.errors;
          rec.firstError ??= m.error;
        }
      }
    });
    worker.on('error', (e) => {
      rec.errors++;
      rec.firstError ??= String(e?.stack ?? e);
      if (gen === 0 && readyLeft > 0 && --readyLeft === 0) onReady();
    });
    worker.on('exit', () => {
      if (rec.worker === worker) rec.worker = null;
      board.set(rec.slot, SLOT_WORD.ALIVE, 0);
      if (!stopping) rec.exits.push(since(origin) - startAt);
      const kill = rec.kills.find((k) => k.gen === gen);
      if (kill === undefined || stopping) return;
      kill.exitedAt = since(origin);
      board.setHeld(rec.slot, 0);
      // A supervisor restarts what the OOM killer took, after a pause.
      const t = setTimeout(() => {
        timers.delete(t);
        if (!stopping) spawn(rec, board.get(rec.slot, SLOT_WORD.ISSUED));
      }, shape.hog.respawnMs);
      timers.add(t);
    });
  };

  let startAt = Infinity;
  for (const rec of slots) spawn(rec, 0);
  const aborted = new Promise<void>((resolve) => {
    if (hooks.signal?.aborted) resolve();
    hooks.signal?.addEventListener('abort', () => resolve(), { once: true });
  });
  await Promise.race([allReady, aborted, delay(READY_TIMEOUT_MS)]);

  const startMs = Math.floor(since(origin));
  const startEpochMs = Date.now();
  startAt = startMs;
  board.setG(BOARD_WORD.START, startMs + 1);
  board.notifyG(BOARD_WORD.START);
  const samples: Sample[] = [];
  const watchdog = { lastOk: startMs, inEpisode: false, livelocks: 0, longestMs: 0 };
  const progressSlots = slots.filter((s) => s.workload !== 'net').length > 0 ? slots.filter((s) => s.workload !== 'net') : slots;
  const sample = (): Sample => {
    const st = pool.stats();
    const t = since(origin) - startMs;
    let idle = setup.idle?.() ?? 0;
    let lastOk = startMs;
    const ok: Record<string, number> = {};
    for (const rec of slots) {
      idle += board.get(rec.slot, SLOT_WORD.IDLE);
      ok[rec.workload] = (ok[rec.workload] ?? 0) + board.get(rec.slot, SLOT_WORD.OK);
    }
    for (const rec of progressSlots) lastOk = Math.max(lastOk, board.get(rec.slot, SLOT_WORD.LAST_OK));
    const quiet = since(origin) - lastOk;
    if (lastOk > watchdog.lastOk) watchdog.inEpisode = false;
    watchdog.lastOk = lastOk;
    watchdog.longestMs = Math.max(watchdog.longestMs, quiet);
    if (quiet > shape.watchdogMs && !watchdog.inEpisode) {
      watchdog.inEpisode = true;
      watchdog.livelocks++;
    }
    const s: Sample = {
      t: Math.round(t),
      free: st.freePages,
      allocated: st.allocatedPages,
      reserved: st.reservedPages + st.reservedTokens,
      idle,
      ok,
      ro: board.g(BOARD_WORD.RO),
      psiSomeUs: st.psi.some.total,
      psiFullUs: st.psi.full.total,
      stalled: quiet > shape.watchdogMs ? 1 : 0,
    };
    samples.push(s);
    hooks.onSample?.(s, st, board, slots);
    return s;
  };
  const statsAtStart = pool.stats();
  sample();
  const ticker = setInterval(sample, shape.sampleMs);
  await Promise.race([delay(shape.durationMs), aborted]);
  clearInterval(ticker);
  const partial = hooks.signal?.aborted === true;
  const endMs = since(origin);
  sample();

  // Stop: workers finish their operation, the stuck ones are terminated.
  stopping = true;
  for (const t of timers) clearTimeout(t);
  board.setG(BOARD_WORD.STOP, 1);
  board.notifyG(BOARD_WORD.START);
  const exits = slots.map((rec) => (rec.worker === null ? Promise.resolve() : new Promise<void>((r) => rec.worker!.once('exit', () => r()))));
  await Promise.race([Promise.all(exits), delay(GRACE_MS)]);
  const stopAt = since(origin);
  await Promise.all(
    slots.map(async (rec) => {
      const w = rec.worker;
      if (w === null) return;
      const inflight = board.get(rec.slot, SLOT_WORD.ALLOC_SINCE);
      if (inflight > 0) rec.inflightAtStop.push(stopAt - (inflight - 1));
      rec.terminated++;
      await w.terminate();
    }),
  );
  await delay(20); // the last broadcast warnings
  offWarnings();
  const statsAtEnd = pool.stats();
  const result = collect({
    policy,
    options,
    shape,
    poolOptions: poolOptionsOf(policy, shape),
    board,
    slots,
    samples,
    warnings,
    statsAtStart,
    statsAtEnd,
    watchdog,
    wallMs: endMs - startMs,
    startEpochMs,
    partial,
  });
  try {
    setup.close?.();
  } catch {
    // a mempool whose elements went with terminated workers
  }
  pool.close();
  rmSync(dir, { recursive: true, force: true });
  return result;
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
