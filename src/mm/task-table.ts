/**
 * Tasks: who owns pages, for the OOM killer. Every thread attached to a
 * pool is a task (its id is the native ledger's); a service can register
 * logical tasks (pool.registerTask) and attribute allocations to one with
 * task.run(fn), sync or async.
 *
 * The task table lives in the control block so that every thread's OOM
 * killer sees every task: per task id (< MAX_TABLE_TASKS), TASK_WORDS words:
 *   FLAGS        TASK_FLAG: LIVE | THREAD | VICTIM | SKIP (MMF_OOM_SKIP) | KILLED |
 *                SIGPENDING, and which task lock its thread is in (task-lock.ts)
 *   ADJ          oom_score_adj, -1000..1000 (-1000: never chosen)
 *   HOME         the thread task that runs this task's kill callback
 *   BLOCKED_ON   id of the SharedMutex it is blocked on, 0 when none
 *   HOLDER       that mutex's holder when it blocked
 *   VICTIM_AT    ms (pool clock) when it was chosen as a victim
 *   KILL_SEQ     bumped to deliver a kill; the home thread listens on it
 *   WAITING      this thread's share of CTL.WAITERS (native takes it back
 *                if the thread dies inside a wait: native/sync/control.h)
 *   CACHED       pages in the thread's page cache
 *   TOKENS       pages in the thread's token reservations
 *   NAME         up to 23 bytes of UTF-8, in the last 6 words
 * (native/sync/control.h clears WAITING, CACHED and TOKENS when a task
 * retires.) Each entry is one cache line, written mostly by its thread.
 * Pages held come from the native ledger (native.taskPages).
 */
import { MAX_TABLE_TASKS, TASK_TABLE_BASE, TASK_WORD, TASK_WORDS } from '../binding/control.js';
import { InvalidArgTypeError, OutOfRangeError } from '../errors.js';
import { TASK_LOCK_FLAG } from './task-lock.js';

/** The bits of a task's FLAGS word. */
export const TASK_FLAG = {
  LIVE: 0x1,
  THREAD: 0x2,
  VICTIM: 0x4,
  SKIP: 0x8,
  KILLED: 0x10,
  SIGPENDING: 0x20,
  /** Which task lock the task's thread is in (task-lock.ts): 0x40..0x400. */
  ...TASK_LOCK_FLAG,
} as const;

/** The words of a task's entry in the table (declared once, in native/sync/control.h). */
export { TASK_WORD };

export const MAX_TASK_NAME = 23;
export const OOM_SCORE_ADJ_MIN = -1000;
export const OOM_SCORE_ADJ_MAX = 1000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function taskBase(id: number): number {
  return TASK_TABLE_BASE + id * TASK_WORDS;
}

/** Milliseconds on a clock every thread shares (process.hrtime is process-wide). */
export function poolClockMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n) & 0x7fffffff;
}

export function checkAdj(adj: unknown): number {
  if (typeof adj !== 'number') throw new InvalidArgTypeError(`oomScoreAdj must be a number; received ${typeof adj}`);
  if (!Number.isInteger(adj) || adj < OOM_SCORE_ADJ_MIN || adj > OOM_SCORE_ADJ_MAX) {
    throw new OutOfRangeError(`oomScoreAdj must be an integer from -1000 to 1000; received ${adj}`);
  }
  return adj;
}

/** A view of the task table over a pool's control block. */
export class TaskTable {
  readonly #ctl: Int32Array;
  readonly #bytes: Uint8Array;

  constructor(control: SharedArrayBuffer) {
    this.#ctl = new Int32Array(control);
    this.#bytes = new Uint8Array(control);
  }

  inTable(id: number): boolean {
    return id > 0 && id < MAX_TABLE_TASKS;
  }

  init(id: number, opts: { name: string; adj: number; home: number; thread: boolean }): void {
    if (!this.inTable(id)) return;
    const b = taskBase(id);
    const c = this.#ctl;
    for (let i = 0; i < TASK_WORDS; i++) Atomics.store(c, b + i, 0);
    Atomics.store(c, b + TASK_WORD.ADJ, opts.adj);
    Atomics.store(c, b + TASK_WORD.HOME, opts.home);
    const name = encoder.encode(opts.name).subarray(0, MAX_TASK_NAME);
    this.#bytes.set(name, (b + TASK_WORD.NAME) * 4);
    Atomics.store(c, b + TASK_WORD.FLAGS, TASK_FLAG.LIVE | (opts.thread ? TASK_FLAG.THREAD : 0));
  }

  clear(id: number): void {
    if (!this.inTable(id)) return;
    Atomics.store(this.#ctl, taskBase(id) + TASK_WORD.FLAGS, 0);
  }

  flags(id: number): number {
    return this.inTable(id) ? Atomics.load(this.#ctl, taskBase(id) + TASK_WORD.FLAGS) : 0;
  }

  setFlags(id: number, bits: number): void {
    if (this.inTable(id)) Atomics.or(this.#ctl, taskBase(id) + TASK_WORD.FLAGS, bits);
  }

  clearFlags(id: number, bits: number): void {
    if (this.inTable(id)) Atomics.and(this.#ctl, taskBase(id) + TASK_WORD.FLAGS, ~bits);
  }

  /** The control-block word index of a field (for Atomics.wait / notify). */
  wordOf(id: number, field: number): number {
    return taskBase(id) + field;
  }

  get(id: number, field: number): number {
    return this.inTable(id) ? Atomics.load(this.#ctl, taskBase(id) + field) : 0;
  }

  set(id: number, field: number, value: number): void {
    if (this.inTable(id)) Atomics.store(this.#ctl, taskBase(id) + field, value);
  }

  name(id: number): string {
    if (!this.inTable(id)) return `task-${id}`;
    const start = (taskBase(id) + TASK_WORD.NAME) * 4;
    const raw = this.#bytes.subarray(start, start + MAX_TASK_NAME + 1);
    const end = raw.indexOf(0);
    return decoder.decode(raw.slice(0, end < 0 ? MAX_TASK_NAME : end)) || `task-${id}`;
  }

  /** Every task id with the LIVE flag. */
  live(): number[] {
    const out: number[] = [];
    for (let id = 1; id < MAX_TABLE_TASKS; id++) {
      if (Atomics.load(this.#ctl, taskBase(id) + TASK_WORD.FLAGS) & TASK_FLAG.LIVE) out.push(id);
    }
    return out;
  }

  /** Records that `id` blocks on (or, with 0, no longer blocks on) a mutex held by `holder`. */
  blockedOn(id: number, mutexId: number, holder: number): void {
    this.set(id, TASK_WORD.BLOCKED_ON, mutexId);
    this.set(id, TASK_WORD.HOLDER, holder);
  }
}
