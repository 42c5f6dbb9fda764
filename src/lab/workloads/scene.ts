/**
 * The 2015 TIF_MEMDIE deadlock by construction (kernel-mm.md §6.5): an
 * order the workload enforces, not one that timing produces. Once per run:
 *
 *   1. cue     the hog, grown to its share of the pool, takes the scene's
 *              gate (a SharedMutex of the run) and sets CUED;
 *   2. hold    the next fs transaction to take the fs lock — whoever it is,
 *              before it allocates anything — sets LOCKED and waits for the
 *              gate: it holds the fs lock for the hog;
 *   3.         the hog, seeing LOCKED, takes the rest of memory (a growth
 *              that reclaims every cache and never calls the OOM killer),
 *              and appends to the filesystem: its transaction
 *   4. approach  sets QUEUED and releases the gate just before it blocks on
 *              the fs lock. The holder goes on: its allocations find no
 *              memory, and on linux-4.0 they loop. An FS-capable allocation
 *              elsewhere (the user workload's) calls the OOM killer, which
 *              chooses the hog — blocked on the lock the looping allocator
 *              holds, whether it was chosen before or after it blocked: a
 *              kill is acted on at the end of the step, like a fatal signal
 *              on the way back from a system call.
 *
 * Each policy then shows what it makes of it: the loop and the plain OOM
 * killer hang, the reaper and the victim timeout recover (each its own
 * way), a reservation's hog waits for its reservation before the lock and
 * never blocks on it, 3.19 fails the holder's transaction instead.
 *
 * If the cueing worker's transaction ends before it reaches the lock (a
 * reservation wait cut short by its kill, a read-only filesystem) it sets
 * ABORTED and releases the gate, so the holder is never left waiting; a
 * cueing worker that dies holding the gate is taken over like any dead
 * holder (SharedMutex's robust futex).
 *
 * Shared state: the board's SCENE words (atomics; the state moves only
 * forward: NONE → CUED → LOCKED → QUEUED, or to ABORTED from CUED or
 * LOCKED, once per run) and the gate. Lock order: the holder takes the fs
 * lock, then the gate; the cueing worker holds the gate and takes the fs
 * lock only after releasing it — never both the other way round.
 */
import type { Pool, SharedMutex } from '../../index.js';
import type { LabScene, Outcome } from '../api.js';
import { BOARD_WORD, since, SLOT_WORD, type Board } from '../board.js';

export const SCENE_STATE = { NONE: 0, CUED: 1, LOCKED: 2, QUEUED: 3, ABORTED: 4 } as const;
/** BOARD_WORD.SCENE_HOLDER_OUTCOME: how the holder's transaction ended. */
export const HOLDER_OUTCOME = { ok: 1, failed: 2, refused: 3, error: 4 } as const;

export class Scene implements LabScene {
  readonly #board: Board;
  readonly #gate: SharedMutex;
  readonly #pool: Pool;
  readonly #slot: number;
  readonly #origin: number;
  readonly #killed: () => boolean;
  readonly #stopping: () => boolean;
  /** This worker cued the scene and holds the gate. */
  #cued = false;
  /** This worker's transaction released the holder and is taking the fs lock. */
  #queued = false;

  constructor(o: { board: Board; gate: SharedMutex; pool: Pool; slot: number; origin: number; killed: () => boolean; stopping: () => boolean }) {
    this.#board = o.board;
    this.#gate = o.gate;
    this.#pool = o.pool;
    this.#slot = o.slot;
    this.#origin = o.origin;
    this.#killed = o.killed;
    this.#stopping = o.stopping;
  }

  #stamp(word: number): void {
    this.#board.setG(word, Math.floor(since(this.#origin)) + 1);
  }

  async cue(): Promise<boolean> {
    const b = this.#board;
    // The gate first: a holder that sees CUED must find it taken.
    if (b.g(BOARD_WORD.SCENE) !== SCENE_STATE.NONE || !this.#gate.tryLock(this.#pool)) return false;
    if (!b.casG(BOARD_WORD.SCENE, SCENE_STATE.NONE, SCENE_STATE.CUED)) {
      this.#gate.unlock();
      return false;
    }
    this.#cued = true;
    b.setG(BOARD_WORD.SCENE_CUE_SLOT, this.#slot + 1);
    this.#stamp(BOARD_WORD.SCENE_CUED_AT);
    while (b.g(BOARD_WORD.SCENE) === SCENE_STATE.CUED) {
      if (this.#killed() || this.#stopping()) {
        this.#abort();
        return false;
      }
      await b.waitG(BOARD_WORD.SCENE, SCENE_STATE.CUED, 20);
    }
    return b.g(BOARD_WORD.SCENE) === SCENE_STATE.LOCKED;
  }

  /** Just before this worker takes the fs lock: if it cued the scene, it releases the holder now. */
  approach(): void {
    if (!this.#cued) return;
    this.#cued = false;
    this.#queued = true;
    this.#stamp(BOARD_WORD.SCENE_QUEUED_AT);
    this.#board.setG(BOARD_WORD.SCENE, SCENE_STATE.QUEUED);
    this.#gate.unlock();
  }

  /**
   * Just after this worker took the fs lock: the first transaction after a
   * cue holds it for the cueing worker (waiting for the gate; `waiting`
   * marks the wait on the board). True when this transaction is the holder.
   */
  hold(waiting: (wait: () => void) => void): boolean {
    const b = this.#board;
    if (this.#queued) {
      this.#queued = false;
      this.#stamp(BOARD_WORD.SCENE_ACQUIRED_AT);
      return false;
    }
    if (b.g(BOARD_WORD.SCENE) !== SCENE_STATE.CUED || !b.casG(BOARD_WORD.SCENE, SCENE_STATE.CUED, SCENE_STATE.LOCKED)) return false;
    b.setG(BOARD_WORD.SCENE_HOLDER_SLOT, this.#slot + 1);
    this.#stamp(BOARD_WORD.SCENE_LOCKED_AT);
    b.notifyG(BOARD_WORD.SCENE);
    waiting(() => this.#gate.lock(this.#pool));
    this.#gate.unlock();
    return true;
  }

  /** The holder's transaction ended (after its unlock); `longestUs`: its longest allocation. */
  released(outcome: Outcome | 'error', longestUs: number): void {
    this.#board.setG(BOARD_WORD.SCENE_HOLDER_WAIT_US, Math.min(2 ** 31 - 1, Math.ceil(longestUs)));
    this.#board.setG(BOARD_WORD.SCENE_HOLDER_OUTCOME, HOLDER_OUTCOME[outcome]);
    this.#stamp(BOARD_WORD.SCENE_RELEASED_AT);
  }

  /** Every transaction of this worker ends here: a cue that never reached the lock lets the holder go. */
  ended(): void {
    if (this.#cued) this.#abort();
    this.#queued = false;
  }

  #abort(): void {
    this.#cued = false;
    this.#stamp(BOARD_WORD.SCENE_ABORTED_AT);
    this.#board.setG(BOARD_WORD.SCENE, SCENE_STATE.ABORTED);
    this.#board.notifyG(BOARD_WORD.SCENE);
    this.#gate.unlock();
  }
}

/** Marks `slot` as waiting for a lock (SLOT_WORD.LOCK_SINCE) while `wait` runs: how the main thread tells a blocked worker. */
export function lockWait(board: Board, slot: number, origin: number, wait: () => void): void {
  board.set(slot, SLOT_WORD.LOCK_SINCE, Math.floor(since(origin)) + 1);
  try {
    wait();
  } finally {
    board.set(slot, SLOT_WORD.LOCK_SINCE, 0);
  }
}
