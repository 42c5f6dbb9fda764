/**
 * A lab worker: attaches to the run's pool, builds its workload with the
 * policy's filesystem, waits for the start, then issues its planned
 * operations on schedule (op i is due at start + i × interval) until the
 * run ends, it is stopped, or it is OOM-killed. It yields to its event loop
 * between operations so that kswapd, reclaim requests and kill delivery
 * run. Counters go to the live board at once; histograms are posted every
 * SNAPSHOT_MS and at the end.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Pool, SharedMutex } from '../index.js';
import { Board, BOARD_WORD, since, SLOT_WORD } from './board.js';
import { DIGEST_FIRST_OPS, opDigest, planOp } from './plan.js';
import { policyByName } from './policies/index.js';
import type { WorkerInit, WorkerMessage } from './protocol.js';
import { FNV_OFFSET } from './rng.js';
import { type Outcome, Meter, type WorkerContext, type WorkloadRunner } from './workloads/context.js';
import { Filesystem, fsWorkload } from './workloads/fs.js';
import { hogWorkload } from './workloads/hog.js';
import { netWorkload } from './workloads/net.js';
import { userWorkload } from './workloads/user.js';

const SNAPSHOT_MS = 250;

// nofail's warnings are the lab's data (the main thread collects them):
// keep Node from printing each one.
process.removeAllListeners('warning');

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (m: WorkerMessage) => port.postMessage(m);
const board = new Board(init.board);
const { slot, shape, origin } = init;
const policy = policyByName(init.policy)!;
let killed = false;

const pool = Pool.attach(init.handle, {
  name: `${init.workload}-${slot}`,
  oomScoreAdj: init.workload === 'hog' ? shape.hog.oomScoreAdj : 0,
  // A fatal signal, not an exit on the spot: the worker stops at the end of
  // its operation — and not before, if it is blocked on a lock.
  onOomKill: () => {
    if (killed) return;
    killed = true;
    board.add(slot, SLOT_WORD.KILLS);
    post({ type: 'killed', at: since(origin) });
  },
});
const interval = { fs: shape.fs.intervalMs, net: shape.net.intervalMs, user: shape.user.intervalMs, hog: shape.hog.intervalMs }[init.workload];
const ctx: WorkerContext = {
  pool,
  board,
  slot,
  shape,
  origin,
  meter: new Meter(board, slot, origin, interval),
  killed: () => killed,
  stopping: () => board.g(BOARD_WORD.STOP) !== 0,
};
const fsPolicy = policy.fs({ pool, shared: init.shared, interrupted: () => killed || ctx.stopping(), caller: `${init.workload}-${slot}` });
const fs = new Filesystem(ctx, SharedMutex.attach(init.mutex), fsPolicy);
const runner: WorkloadRunner =
  init.workload === 'fs' ? fsWorkload(ctx, fs, init.dir)
  : init.workload === 'net' ? netWorkload(ctx)
  : init.workload === 'user' ? userWorkload(ctx)
  : hogWorkload(ctx, fs);

let errors = 0;
let firstError: string | undefined;
const histograms = (type: 'snapshot' | 'final'): WorkerMessage => ({
  type,
  gen: init.gen,
  alloc: ctx.meter.alloc,
  op: ctx.meter.op,
  opPlentiful: ctx.meter.opPlentiful,
  killed,
  errors,
  ...(firstError === undefined ? {} : { error: firstError }),
});

const sleep = (ms: number) => new Promise<void>((r) => (ms >= 1 ? setTimeout(r, ms) : setImmediate(r)));

async function main(): Promise<void> {
  post({ type: 'ready' });
  // Atomics.waitAsync does not keep a thread alive; this does, until the end.
  const keepAlive = setInterval(() => {}, 1000);
  while (board.g(BOARD_WORD.START) === 0 && !ctx.stopping()) await board.waitG(BOARD_WORD.START, 0, 100);
  const start = board.g(BOARD_WORD.START) - 1;
  const end = start + shape.durationMs;
  // A respawned worker starts its schedule now; the first hog at the pressure phase.
  let base = init.gen > 0 ? since(origin) : start;
  if (init.workload === 'hog' && init.gen === 0) base = start + shape.hog.startMs;
  // A respawned worker goes on with its predecessor's digests (and op indices).
  let digest = board.get(slot, SLOT_WORD.DIGEST) >>> 0 || FNV_OFFSET;
  let digestFirst = board.get(slot, SLOT_WORD.DIGEST_FIRST) >>> 0 || FNV_OFFSET;
  let lastSnapshot = since(origin);
  for (let i = init.startOp; ; i++) {
    const due = base + (i - init.startOp) * interval;
    if (due >= end || killed || ctx.stopping()) break;
    await sleep(due - since(origin));
    if (killed || ctx.stopping()) break;
    const op = planOp(shape, init.workload, slot, i);
    digest = opDigest(digest, op);
    board.set(slot, SLOT_WORD.DIGEST, digest | 0);
    if (i < DIGEST_FIRST_OPS) {
      digestFirst = opDigest(digestFirst, op);
      board.set(slot, SLOT_WORD.DIGEST_FIRST, digestFirst | 0);
    }
    board.add(slot, SLOT_WORD.ISSUED);
    let outcome: Outcome | 'error' = 'error';
    const began = since(origin);
    try {
      outcome = runner.run(op);
    } catch (e) {
      // After a kill (the reaper may have taken our pages) errors are expected.
      if (killed) break;
      errors++;
      firstError ??= e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    }
    const t = since(origin);
    const us = Math.max(1, Math.round((t - due) * 1000));
    ctx.meter.op.record(us);
    // While memory is plentiful: the operation's own time, without the schedule's lag.
    if (due < start + shape.hog.startMs) ctx.meter.opPlentiful.record(Math.max(1, Math.round((t - began) * 1000)));
    if (outcome === 'ok') {
      board.add(slot, SLOT_WORD.OK);
      board.set(slot, SLOT_WORD.LAST_OK, Math.floor(t));
    } else if (outcome === 'failed') board.add(slot, SLOT_WORD.FAILED);
    else if (outcome === 'refused') board.add(slot, SLOT_WORD.REFUSED);
    board.set(slot, SLOT_WORD.IDLE, runner.idle());
    if (t - lastSnapshot >= SNAPSHOT_MS) {
      lastSnapshot = t;
      post(histograms('snapshot'));
    }
  }
  board.set(slot, SLOT_WORD.IDLE, 0);
  if (!killed) {
    try {
      runner.close();
    } catch (e) {
      errors++;
      firstError ??= String(e);
    }
  }
  post(histograms('final'));
  clearInterval(keepAlive);
  pool.close();
  if (killed) {
    try {
      runner.close();
    } catch {
      // its pages went back with the pool; only the file is closed here
    }
  }
}

main().catch((e) => {
  post({ type: 'final', gen: init.gen, alloc: ctx.meter.alloc, op: ctx.meter.op, opPlentiful: ctx.meter.opPlentiful, killed, errors: errors + 1, error: String(e?.stack ?? e) });
  pool.close();
});
