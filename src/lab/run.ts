/**
 * One run of one policy, on the main thread: a fresh pool with the
 * policy's options, fresh workers, a sampler and watchdog, and a clean
 * stop. The main thread never blocks: it only reads the board and
 * pool.stats(), and waits on timers and messages.
 *
 * Stopping (end of the run, the caller's AbortSignal — Ctrl-C — or a hook
 * that threw): STOP goes up on the board, workers finish their operation
 * and post their last histograms; those stuck (in an allocation or a lock
 * wait for STUCK_MS, per the board) are terminated at once, any others
 * after GRACE_MS, and the allocation each was in is recorded as lasting
 * until then.
 */
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Pool, SharedMutex, onWarning, type PoolOptions, type PoolStats, type Warning } from '../index.js';
import type { LabPolicy, LabWorkload, PolicySetup } from './api.js';
import { Board, BOARD_WORD, now, since, SLOT_WORD } from './board.js';
import { assignWorkloads, type LabOptions, type Shape } from './config.js';
import { collect, failedResult, type PolicyResult, type Sample, type SlotRecord } from './collect.js';
import { callHook, failureOf, type HookFailure } from './hooks.js';
import type { Catalog, Loaded } from './modules.js';
import type { WorkerInit, WorkerMessage } from './protocol.js';

const WORKER_URL = new URL('./worker.js', import.meta.url);
/** How long stopping workers that are not stuck get to finish their operation before they are terminated. */
export const GRACE_MS = 300;
/** A worker in the same allocation or lock wait for this long when the run stops is stuck: it is terminated without the grace. */
const STUCK_MS = 30;
const READY_TIMEOUT_MS = 30_000;

/**
 * Where the run's files go: NOFAIL_LAB_DIR, else /dev/shm (a tmpfs: real
 * files and real read/write/fsync calls, and unlinking them does not wait
 * for a disk's discard), else the OS temp directory.
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
export function poolOptionsOf(policy: LabPolicy, shape: Shape): Pick<PoolOptions, 'behavior' | 'oom'> {
  const { behavior, oom } = policy.pool;
  if (oom === undefined || typeof oom === 'boolean') return { behavior, oom };
  const scaled = { ...oom };
  if (oom.reaper !== false) scaled.reaperDelayMs = Math.round((oom.reaperDelayMs ?? 2000) * shape.timeScale);
  if (oom.victimTimeoutMs) scaled.victimTimeoutMs = Math.round(oom.victimTimeoutMs * shape.timeScale);
  return { behavior, oom: scaled };
}

/** A workload's pace, for the correction of what was in flight at the end; 0 (none) if its schedule() throws — its workers reported that. */
function intervalOf(w: Loaded<LabWorkload>, shape: Shape): number {
  try {
    return w.value.schedule(shape).intervalMs;
  } catch {
    return 0;
  }
}

/** Workers whose workload may run fs transactions: all but the built-in net and user. */
function fsWorkersOf(workloads: readonly string[]): number {
  return workloads.filter((w) => w !== 'net' && w !== 'user').length;
}

export async function runPolicy(policy: Loaded<LabPolicy>, catalog: Catalog, options: LabOptions, shape: Shape, hooks: RunHooks = {}): Promise<PolicyResult> {
  const workloads = assignWorkloads(options.workers, options.workloads).map((name) => {
    const w = catalog.workloads.get(name);
    if (w === undefined) throw new Error(`no workload '${name}' in the catalog`);
    return w;
  });
  const poolOptions = poolOptionsOf(policy.value, shape);
  let failure: HookFailure | null = null;
  let pool: Pool;
  try {
    pool = callHook(policy.label, 'pool', () => Pool.create({ size: options.poolBytes, ...poolOptions, name: 'lab-main' }));
  } catch (e) {
    return failedResult(policy.value, poolOptions, shape, failureOf(e, 'main'));
  }
  let setup: PolicySetup = {};
  try {
    const ctx = { pool, shape, fsWorkers: fsWorkersOf(workloads.map((w) => w.value.name)) };
    setup = callHook(policy.label, 'setup', () => policy.value.setup?.(ctx)) ?? {};
  } catch (e) {
    pool.close();
    return failedResult(policy.value, poolOptions, shape, failureOf(e, 'main'));
  }
  const mutex = new SharedMutex({ name: 'fs', reclaimFs: true });
  const gate = new SharedMutex({ name: 'scene-gate' });
  const dir = mkdtempSync(join(labDir(), 'nofail-lab-'));
  const board = new Board(workloads.length);
  const origin = now();
  const threadIds = new Set<number>();
  const warnings: Warning[] = [];
  const offWarnings = onWarning((w) => {
    if (threadIds.has(w.threadId)) warnings.push(w);
  });
  const slots: SlotRecord[] = workloads.map((w, slot) => ({
    slot,
    workload: w.value.name,
    worker: null,
    gen: -1,
    hist: [],
    kills: [],
    exits: [],
    terminated: 0,
    inflightAtStop: [],
  }));
  let stopping = false;
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let readyLeft = slots.length;
  let onReady: () => void = () => {};
  const allReady = new Promise<void>((resolve) => (onReady = resolve));
  let onFailed: () => void = () => {};
  const failed = new Promise<void>((resolve) => (onFailed = resolve));
  const fail = (f: HookFailure) => {
    failure ??= f;
    onFailed();
  };

  const spawn = (rec: SlotRecord, startOp: number): void => {
    rec.gen++;
    const gen = rec.gen;
    const w = workloads[rec.slot]!;
    const init: WorkerInit = {
      handle: pool.handle,
      mutex: mutex.handle,
      gate: gate.handle,
      shared: setup.shared,
      board: board.sab,
      origin,
      policy: { name: policy.value.name, path: policy.path },
      workload: { name: w.value.name, path: w.path },
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
      } else if (m.type === 'failed') {
        fail(m.failure);
      } else {
        rec.hist[m.gen] = { alloc: m.alloc, op: m.op, opPlentiful: m.opPlentiful };
      }
    });
    worker.on('error', (e) => fail(failureOf(e, `${w.value.name}-${rec.slot}`)));
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
  await Promise.race([allReady, aborted, failed, delay(READY_TIMEOUT_MS)]);

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
    let idle = 0;
    try {
      idle = setup.idle ? callHook(policy.label, 'setup().idle', () => setup.idle!()) : 0;
    } catch (e) {
      fail(failureOf(e, 'main'));
    }
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
  await Promise.race([delay(shape.durationMs), aborted, failed]);
  await sceneTail(board, origin, startMs, shape, workloads.map((w) => w.value.name), () => failure !== null || hooks.signal?.aborted === true);
  clearInterval(ticker);
  const partial = hooks.signal?.aborted === true;
  const endMs = since(origin);
  sample();

  // Stop: workers finish their operation; the stuck ones are terminated at once, the rest after the grace.
  stopping = true;
  for (const t of timers) clearTimeout(t);
  board.setG(BOARD_WORD.STOP, 1);
  board.notifyG(BOARD_WORD.START);
  board.notifyG(BOARD_WORD.SCENE);
  const stuck = (rec: SlotRecord) => {
    const t = since(origin);
    const alloc = board.get(rec.slot, SLOT_WORD.ALLOC_SINCE);
    const lock = board.get(rec.slot, SLOT_WORD.LOCK_SINCE);
    return (alloc > 0 && t - alloc >= STUCK_MS) || (lock > 0 && t - lock >= STUCK_MS);
  };
  const graceEnd = performance.now() + GRACE_MS;
  while (performance.now() < graceEnd && slots.some((rec) => rec.worker !== null && !stuck(rec))) await delay(5);
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
    policy: policy.value,
    options,
    shape,
    poolOptions,
    board,
    slots,
    intervals: Object.fromEntries(workloads.map((w) => [w.value.name, intervalOf(w, shape)])),
    samples,
    warnings,
    statsAtStart,
    statsAtEnd,
    watchdog,
    wallMs: endMs - startMs,
    startEpochMs,
    startMs,
    partial,
    failure,
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

/**
 * A machine slow enough that the hog cued the scene late still sees it
 * play out: the run goes on to the cue + sceneTailMs; a scene the mix can
 * stage (a hog and fs) that is not cued by the end gets sceneTailMs more to
 * be cued. On an unloaded machine the cue comes at a third of the run and
 * neither applies.
 */
async function sceneTail(board: Board, origin: number, startMs: number, shape: Shape, mix: readonly string[], stop: () => boolean): Promise<void> {
  if (!mix.includes('hog') || !mix.includes('fs')) return;
  const waitCueUntil = since(origin) + shape.sceneTailMs;
  while (!stop()) {
    const cued = board.g(BOARD_WORD.SCENE_CUED_AT);
    const until = cued === 0 ? waitCueUntil : Math.max(startMs + shape.durationMs, cued - 1 + shape.sceneTailMs);
    if (since(origin) >= until) return;
    await delay(Math.min(10, until - since(origin)));
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
