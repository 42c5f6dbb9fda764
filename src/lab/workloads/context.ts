/**
 * What a workload runs with in its worker: the pool, the live board slot,
 * the shape, and the meter that times every allocation.
 */
import type { RecordableHistogram } from 'node:perf_hooks';
import { type Pool } from '../../index.js';
import { since, SLOT_WORD, type Board } from '../board.js';
import type { Shape } from '../config.js';
import { newHistogram, recordCorrected } from '../latency.js';
import type { Op } from '../plan.js';

/** An allocation slower than this is a stall. */
export const STALL_MS = 1000;

export interface WorkerContext {
  readonly pool: Pool;
  readonly board: Board;
  readonly slot: number;
  readonly shape: Shape;
  /** The run's clock origin (board.ts since()). */
  readonly origin: number;
  readonly meter: Meter;
  killed(): boolean;
  stopping(): boolean;
}

export type Outcome = 'ok' | 'failed' | 'refused';

export interface WorkloadRunner {
  /** The op interval: the pace of the schedule. */
  readonly intervalMs: number;
  run(op: Op): Outcome;
  /** Pages set aside by the policy and not used (for the board's IDLE). */
  idle(): number;
  /** At the end of the run (not after a kill): give back what it holds. */
  close(): void;
}

function isEnomem(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === 'ENOMEM';
}

/**
 * Times allocations into a histogram (µs, corrected for coordinated
 * omission at the workload's pace) and publishes the one in flight on the
 * board, so the main thread sees a stuck allocation while it is stuck.
 */
export class Meter {
  readonly alloc: RecordableHistogram = newHistogram();
  readonly op: RecordableHistogram = newHistogram();
  /** Operation service time (start to end, no schedule lag) while memory was plentiful (before the hog starts). */
  readonly opPlentiful: RecordableHistogram = newHistogram();
  readonly #board: Board;
  readonly #slot: number;
  readonly #origin: number;
  readonly #expectedUs: number;

  constructor(board: Board, slot: number, origin: number, intervalMs: number) {
    this.#board = board;
    this.#slot = slot;
    this.#origin = origin;
    this.#expectedUs = intervalMs * 1000;
  }

  /** Runs one call that allocates `pages` pages (0: may not allocate; timed, not counted). */
  timed<T>(fn: () => T, pages = 1): T {
    const b = this.#board;
    const t = performance.now();
    b.set(this.#slot, SLOT_WORD.ALLOC_SINCE, Math.floor(since(this.#origin)) + 1);
    try {
      const v = fn();
      if (pages > 0) b.add(this.#slot, SLOT_WORD.ALLOCS, pages);
      return v;
    } catch (e) {
      if (isEnomem(e)) b.add(this.#slot, SLOT_WORD.ALLOC_FAILS);
      throw e;
    } finally {
      b.set(this.#slot, SLOT_WORD.ALLOC_SINCE, 0);
      const ms = performance.now() - t;
      if (ms >= STALL_MS) b.add(this.#slot, SLOT_WORD.STALLS);
      recordCorrected(this.alloc, ms * 1000, this.#expectedUs);
    }
  }
}

export { isEnomem };
