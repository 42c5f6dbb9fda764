/**
 * The operations each worker issues: planOp(shape, workload, worker, i) is
 * the workload's plan() over the random stream of (seed, worker, i) — a
 * pure function of those, whatever the timing — and opDigest folds an
 * operation into the digest of a worker's sequence.
 */
import type { LabWorkload } from './api.js';
import type { Shape } from './config.js';
import { fnv1a, OpRng } from './rng.js';

export function planOp<Op>(shape: Shape, workload: Pick<LabWorkload<Op>, 'plan'>, worker: number, i: number): Op {
  return workload.plan(new OpRng(shape.seed, worker, i), i, shape);
}

/**
 * How many operations of each worker the reproducibility digest covers
 * (WorkloadStats.firstDigest). A fixed count, not the run's length: how
 * many operations fit in a run depends on the machine, which ones come
 * first does not. 256 is about half a second of fs or user work and a
 * second of net at their paces (config.ts).
 */
export const DIGEST_FIRST_OPS = 256;

/** Folds one operation into a sequence digest: FNV-1a over its JSON text (plan() ops are JSON-serialisable). */
export function opDigest(h: number, op: unknown): number {
  const text = JSON.stringify(op) ?? 'undefined';
  for (let i = 0; i < text.length; i++) h = fnv1a(h, text.charCodeAt(i));
  return h;
}
