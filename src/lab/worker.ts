/**
 * A lab worker: loads its policy and workload (built-in, or a user's
 * module), attaches to the run's pool, starts the workload with the
 * policy's filesystem, waits for the start, then issues its planned
 * operations on schedule (op i is due at start + i × interval) until the
 * run ends, it is stopped, or it is OOM-killed. It yields to its event loop
 * between operations so that kswapd, reclaim requests and kill delivery
 * run. Counters go to the live board at once; histograms are posted every
 * SNAPSHOT_MS and at the end. A hook that throws ends the worker with a
 * 'failed' message naming the module and the hook (hooks.ts): the run
 * fails.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Pool, SharedMutex } from '../index.js';
import { type FsContext, type Outcome, Refused, type WorkloadContext, type WorkloadRunner } from './api.js';
import { Board, BOARD_WORD, since, SLOT_WORD } from './board.js';
import { callHook, callHookAsync, failureOf, HookError, isEnomem } from './hooks.js';
import { resolvePolicy, resolveWorkload } from './modules.js';
import { DIGEST_FIRST_OPS, opDigest, planOp } from './plan.js';
import type { WorkerInit, WorkerMessage } from './protocol.js';
import { FNV_OFFSET } from './rng.js';
import { Filesystem } from './workloads/filesystem.js';
import { Meter } from './workloads/meter.js';
import { Scene } from './workloads/scene.js';

const SNAPSHOT_MS = 250;
const OUTCOMES: readonly unknown[] = ['ok', 'failed', 'refused'] satisfies Outcome[];

// nofail's warnings are the lab's data (the main thread collects them):
// keep Node from printing each one.
process.removeAllListeners('warning');

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (m: WorkerMessage) => port.postMessage(m);
const board = new Board(init.board);
const { slot, shape, origin } = init;
const stopping = () => board.g(BOARD_WORD.STOP) !== 0;
let killed = false;
let pool: Pool | null = null;
let meter: Meter | null = null;
let where = `${init.workload.name}-${slot}`;

const sleep = (ms: number) => new Promise<void>((r) => (ms >= 1 ? setTimeout(r, ms) : setImmediate(r)));

function histograms(type: 'snapshot' | 'final', m: Meter): WorkerMessage {
  return { type, gen: init.gen, alloc: m.alloc, op: m.op, opPlentiful: m.opPlentiful, killed };
}

/** What schedule() returned, checked: { intervalMs > 0, startMs >= 0 }, no other key. */
function checkSchedule(s: { intervalMs: number; startMs?: number }): { intervalMs: number; startMs: number } {
  const startMs = s?.startMs ?? 0;
  const extra = s !== null && typeof s === 'object' ? Object.keys(s).filter((k) => k !== 'intervalMs' && k !== 'startMs') : [];
  if (!(typeof s?.intervalMs === 'number' && s.intervalMs > 0 && Number.isFinite(s.intervalMs)) || !(startMs >= 0 && Number.isFinite(startMs)) || extra.length > 0) {
    throw new TypeError(`schedule() must return { intervalMs > 0, startMs >= 0 } and nothing else; returned ${JSON.stringify(s)}`);
  }
  return { intervalMs: s.intervalMs, startMs };
}

async function main(): Promise<void> {
  const policy = await resolvePolicy(init.policy.name, init.policy.path);
  const workload = await resolveWorkload(init.workload.name, init.workload.path);
  const w = workload.value;
  where = `${w.name}-${slot}`;
  const schedule = callHook(workload.label, 'schedule', () => checkSchedule(w.schedule(shape)));
  const p = Pool.attach(init.handle, {
    name: where,
    oomScoreAdj: w.oomScoreAdj ?? 0,
    // No per-thread page cache: a cache holds back up to a few hundred
    // pages per thread, which drain back to the zone whenever its thread
    // next allocates — memory that would let the scene's holder through
    // by luck, where the scene must not depend on it.
    pcp: false,
    // A fatal signal, not an exit on the spot: the worker stops at the end of
    // its operation — and not before, if it is blocked on a lock.
    onOomKill: () => {
      if (killed) return;
      killed = true;
      board.add(slot, SLOT_WORD.KILLS);
      post({ type: 'killed', at: since(origin) });
    },
  });
  pool = p;
  const m = new Meter(board, slot, origin, schedule.intervalMs);
  meter = m;
  const fsCtx: FsContext = {
    pool: p,
    shared: init.shared,
    caller: where,
    interrupted: () => killed || stopping(),
    refuse: (reason) => {
      throw new Refused(reason);
    },
  };
  const fsPolicy = callHook(policy.label, 'fs', () => policy.value.fs(fsCtx));
  const scene = new Scene({ board, gate: SharedMutex.attach(init.gate), pool: p, slot, origin, killed: () => killed, stopping });
  const fs = new Filesystem({
    board,
    slot,
    origin,
    cooldownMs: shape.cooldownMs,
    pool: p,
    mutex: SharedMutex.attach(init.mutex),
    policy: fsPolicy,
    policyLabel: policy.label,
    workloadLabel: workload.label,
    scene,
    meter: m,
  });
  const ctx: WorkloadContext = {
    pool: p,
    fs,
    shape,
    worker: slot,
    name: where,
    dir: init.dir,
    timed: (fn, pages) => m.timed(fn, pages),
    held: (pages) => board.setHeld(slot, pages),
    killed: () => killed,
    stopping,
  };
  const runner: WorkloadRunner = callHook(workload.label, 'start', () => w.start(ctx));
  const idle = () => fs.idle() + (runner.idle ? callHook(workload.label, 'idle', () => runner.idle!()) : 0);

  post({ type: 'ready' });
  // Atomics.waitAsync does not keep a thread alive; this does, until the end.
  const keepAlive = setInterval(() => {}, 1000);
  while (board.g(BOARD_WORD.START) === 0 && !stopping()) await board.waitG(BOARD_WORD.START, 0, 100);
  const start = board.g(BOARD_WORD.START) - 1;
  const end = start + shape.durationMs;
  // A respawned worker starts its schedule now (and goes on with its
  // predecessor's op indices and digests).
  const base = init.gen > 0 ? since(origin) : start + schedule.startMs;
  let digest = board.get(slot, SLOT_WORD.DIGEST) >>> 0 || FNV_OFFSET;
  let digestFirst = board.get(slot, SLOT_WORD.DIGEST_FIRST) >>> 0 || FNV_OFFSET;
  let lastSnapshot = since(origin);
  for (let i = init.startOp; ; i++) {
    const due = base + (i - init.startOp) * schedule.intervalMs;
    if (due >= end || killed || stopping()) break;
    await sleep(due - since(origin));
    if (killed || stopping()) break;
    const op = callHook(workload.label, 'plan', () => planOp(shape, w, slot, i));
    digest = opDigest(digest, op);
    board.set(slot, SLOT_WORD.DIGEST, digest | 0);
    if (i < DIGEST_FIRST_OPS) {
      digestFirst = opDigest(digestFirst, op);
      board.set(slot, SLOT_WORD.DIGEST_FIRST, digestFirst | 0);
    }
    board.add(slot, SLOT_WORD.ISSUED);
    const began = since(origin);
    let outcome: Outcome;
    try {
      outcome = await callHookAsync(workload.label, 'run', () => runner.run(op), true);
    } catch (e) {
      // After a kill (the reaper may have taken our pages) errors are expected.
      if (killed) break;
      if (!isEnomem(e)) throw e;
      outcome = 'failed';
    }
    if (!OUTCOMES.includes(outcome)) throw new HookError(workload.label, 'run', new TypeError(`returned ${JSON.stringify(outcome)}; expected 'ok', 'failed' or 'refused'`));
    const t = since(origin);
    m.op.record(Math.max(1, Math.round((t - due) * 1000)));
    // While memory is plentiful: the operation's own time, without the schedule's lag.
    if (due < start + shape.pressureAtMs) m.opPlentiful.record(Math.max(1, Math.round((t - began) * 1000)));
    if (outcome === 'ok') {
      board.add(slot, SLOT_WORD.OK);
      board.set(slot, SLOT_WORD.LAST_OK, Math.floor(t));
    } else if (outcome === 'failed') board.add(slot, SLOT_WORD.FAILED);
    else board.add(slot, SLOT_WORD.REFUSED);
    board.set(slot, SLOT_WORD.IDLE, idle());
    if (t - lastSnapshot >= SNAPSHOT_MS) {
      lastSnapshot = t;
      post(histograms('snapshot', m));
    }
  }
  board.set(slot, SLOT_WORD.IDLE, 0);
  if (!killed) callHook(workload.label, 'close', () => runner.close?.());
  post(histograms('final', m));
  clearInterval(keepAlive);
  p.close();
  if (killed) {
    try {
      runner.close?.();
    } catch {
      // its pages went back with the pool; only its files are closed here
    }
  }
}

main().catch((e) => {
  post({ type: 'failed', failure: failureOf(e, where) });
  if (meter !== null) post(histograms('final', meter));
  try {
    pool?.close();
  } catch {
    // already closed
  }
  // A module may have left timers or handles behind: this thread is done.
  process.exit(1);
});
