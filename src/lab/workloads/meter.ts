/**
 * The meter of one worker: it times allocations into a histogram (µs,
 * corrected for coordinated omission at the workload's pace) and
 * publishes the one in flight on the board, so the main thread sees a
 * stuck allocation while it is stuck. WorkloadContext.timed() is this.
 */
import type { RecordableHistogram } from 'node:perf_hooks';
import { since, SLOT_WORD, type Board } from '../board.js';
import { isEnomem } from '../hooks.js';
import { newHistogram, recordCorrected } from '../latency.js';

/** An allocation slower than this is a stall. */
export const STALL_MS = 1000;

export class Meter {
  readonly alloc: RecordableHistogram = newHistogram();
  readonly op: RecordableHistogram = newHistogram();
  /** Operation service time (start to end, no schedule lag) while memory was plentiful (before the hog starts). */
  readonly opPlentiful: RecordableHistogram = newHistogram();
  readonly #board: Board;
  readonly #slot: number;
  readonly #origin: number;
  readonly #expectedUs: number;
  /** The longest timed call since resetLongest(), µs. */
  longestUs = 0;

  constructor(board: Board, slot: number, origin: number, intervalMs: number) {
    this.#board = board;
    this.#slot = slot;
    this.#origin = origin;
    this.#expectedUs = intervalMs * 1000;
  }

  /** Runs one call that allocates `pages` pages (0: may allocate; timed, not counted). */
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
      if (ms * 1000 > this.longestUs) this.longestUs = ms * 1000;
      recordCorrected(this.alloc, ms * 1000, this.#expectedUs);
    }
  }
}
