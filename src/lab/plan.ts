/**
 * The operations each workload issues: planOp(shape, workload, worker, i)
 * is a pure function of (seed, worker index, op index), and opDigest folds
 * an operation into the digest of a worker's sequence.
 */
import type { Shape, Workload } from './config.js';
import { fnv1a, OpRng } from './rng.js';

/** One filesystem transaction: metadata reads, blocks pinned until commit, full-block writes. */
export interface FsOp {
  kind: 'fs';
  reads: number[];
  pins: number[];
  writes: number[];
}
/** A burst of ATOMIC pages, freed at the next op. */
export interface NetOp {
  kind: 'net';
  burst: number;
}
/** A cache entry of `pages` KERNEL pages; maybe drop an old one (at `evictAt` of the LRU, 0..1). */
export interface UserOp {
  kind: 'user';
  pages: number;
  evictAt: number;
}
/** `pages` more KERNEL pages held for good, then a one-block append to the filesystem. */
export interface HogOp {
  kind: 'hog';
  pages: number;
  append: boolean;
}
export type Op = FsOp | NetOp | UserOp | HogOp;

function block(rng: OpRng, shape: Shape, hotShare: number): number {
  const fs = shape.fs;
  return rng.chance(hotShare) ? rng.int(0, fs.hotBlocks - 1) : rng.int(fs.hotBlocks, fs.fileBlocks - 1);
}

export function planOp(shape: Shape, workload: Workload, worker: number, i: number): Op {
  const rng = new OpRng(shape.seed, worker, i);
  switch (workload) {
    case 'fs': {
      const fs = shape.fs;
      const reads = Array.from({ length: rng.int(fs.reads[0], fs.reads[1]) }, () => block(rng, shape, 0.8));
      const pins = Array.from({ length: rng.int(fs.pins[0], fs.pins[1]) }, () => block(rng, shape, 1));
      const writes = Array.from({ length: rng.int(fs.writes[0], fs.writes[1]) }, () => block(rng, shape, 0.5));
      return { kind: 'fs', reads, pins: [...new Set(pins)], writes };
    }
    case 'net':
      return { kind: 'net', burst: rng.int(shape.net.burst[0], shape.net.burst[1]) };
    case 'user':
      return { kind: 'user', pages: rng.int(shape.user.pages[0], shape.user.pages[1]), evictAt: rng.chance(shape.user.evictChance) ? rng.next() : -1 };
    case 'hog':
      return { kind: 'hog', pages: shape.hog.chunk, append: true };
  }
}

/**
 * How many operations of each worker the reproducibility digest covers
 * (WorkloadStats.firstDigest). A fixed count, not the run's length: how
 * many operations fit in a run depends on the machine, which ones come
 * first does not. 256 is about half a second of fs or user work and a
 * second of net at their paces (config.ts), so a run of 1.6 s (--quick)
 * still covers it with room to spare.
 */
export const DIGEST_FIRST_OPS = 256;

/** Folds one operation into a sequence digest (FNV-1a over its fields). */
export function opDigest(h: number, op: Op): number {
  switch (op.kind) {
    case 'fs':
      h = fnv1a(h, op.reads.length);
      for (const b of op.reads) h = fnv1a(h, b);
      h = fnv1a(h, op.pins.length);
      for (const b of op.pins) h = fnv1a(h, b);
      h = fnv1a(h, op.writes.length);
      for (const b of op.writes) h = fnv1a(h, b);
      return h;
    case 'net':
      return fnv1a(h, op.burst);
    case 'user':
      return fnv1a(fnv1a(h, op.pages), Math.floor(op.evictAt * 1e6));
    case 'hog':
      return fnv1a(fnv1a(h, op.pages), op.append ? 1 : 0);
  }
}
