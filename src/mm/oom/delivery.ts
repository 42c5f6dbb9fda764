/**
 * Delivering an OOM kill on the victim's own thread. The OOM killer (any
 * thread) only sets flags and bumps the home thread's KILL_SEQ word; the
 * home thread notices on its event loop (Atomics.waitAsync), between the
 * slices of a synchronous wait, or at its next allocation — the points
 * where the kernel checks fatal_signal_pending() — and runs the victim's
 * onOomKill there. Never JavaScript on a thread that is not its own.
 *
 * Defaults when a task has no onOomKill: a worker's thread task ends its
 * worker (process.exit in a worker stops that thread only; the cleanup hook
 * returns its pages); the main thread's task is exempt by default
 * (oomScoreAdj -1000) and, if made killable, exits the process; a logical
 * task is only marked killed (task.killed) and keeps its OOM reserve depth.
 */
import { TASK_FLAG, TASK_WORD, type TaskTable } from '../task-table.js';

/** What kill delivery needs of its thread's attachment (attachment.ts implements it). */
export interface KillHost {
  readonly closed: boolean;
  readonly ctl: Int32Array;
  readonly taskId: number;
  readonly tasks: TaskTable;
  /** The reaper took this thread's pages, its page cache's too. */
  discardCache(): void;
}

export interface OomKillInfo {
  /** The task id that was chosen. */
  task: number;
  name: string;
  /** True when the reaper already took its pages back. */
  reaped: boolean;
}

export type OnOomKill = (info: OomKillInfo) => void;

export class KillDelivery {
  readonly #core: KillHost;
  readonly #callbacks = new Map<number, OnOomKill | undefined>();
  #seen = 0;
  #listening = false;

  constructor(core: KillHost) {
    this.#core = core;
  }

  /** Tasks whose kills this thread delivers (its own, and those it registered). */
  register(task: number, cb: OnOomKill | undefined): void {
    this.#callbacks.set(task, cb);
    this.#listen();
  }

  unregister(task: number): void {
    this.#callbacks.delete(task);
  }

  /** The cheap check at allocation entry: is a kill pending for this thread? */
  pending(): boolean {
    return (this.#core.tasks.flags(this.#core.taskId) & TASK_FLAG.SIGPENDING) !== 0;
  }

  /** Runs the kill callbacks of this thread's tasks that were chosen and not yet told. */
  deliver(): void {
    const core = this.#core;
    const t = core.tasks;
    t.clearFlags(core.taskId, TASK_FLAG.SIGPENDING);
    for (const [task, cb] of this.#callbacks) {
      const flags = t.flags(task);
      if (!(flags & TASK_FLAG.VICTIM) || flags & TASK_FLAG.KILLED) continue;
      t.setFlags(task, TASK_FLAG.KILLED);
      const reaped = (flags & TASK_FLAG.SKIP) !== 0;
      if (task === core.taskId && reaped) core.discardCache();
      const info = { task, name: t.name(task), reaped };
      if (cb !== undefined) {
        cb(info);
      } else if (task === core.taskId) {
        // In a worker this ends the thread only; on the main thread, the
        // process (only if its task was made killable: it is exempt by default).
        process.exit(137);
      }
    }
  }

  #listen(): void {
    if (this.#listening) return;
    this.#listening = true;
    const core = this.#core;
    const word = core.tasks.wordOf(core.taskId, TASK_WORD.KILL_SEQ);
    this.#seen = Atomics.load(core.ctl, word);
    const loop = (): void => {
      if (core.closed) {
        this.#listening = false;
        return;
      }
      const r = Atomics.waitAsync(core.ctl, word, this.#seen);
      const woken = () => {
        this.#seen = Atomics.load(core.ctl, word);
        if (this.pending()) this.deliver();
        loop();
      };
      if (r.async) r.value.then(woken);
      else queueMicrotask(woken);
    };
    loop();
  }
}
