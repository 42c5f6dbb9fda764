/**
 * Logical tasks: a service's unit of OOM accounting and killing, finer than
 * a thread (pool.registerTask). Allocations inside task.run(fn) — sync or
 * async — are charged to the task; its oomScoreAdj steers the OOM killer;
 * its onOomKill runs on the thread that registered it.
 */
import type { Attachment } from './attachment.js';
import { InvalidArgTypeError, PoolClosedError } from '../errors.js';
import { optionKeys, validateOptions } from '../validators.js';
import type { OnOomKill } from './oom/delivery.js';
import { native } from '../binding/native.js';
import { AsyncLocalStorage } from 'node:async_hooks';
import { markContextsUsed } from './context.js';
import { checkAdj, MAX_TASK_NAME, TASK_WORD, TASK_FLAG } from './task-table.js';

export interface TaskOptions {
  name: string;
  /** -1000 (never chosen) .. 1000; default 0. */
  oomScoreAdj?: number;
  /** Runs on this thread when the OOM killer chooses the task. */
  onOomKill?: OnOomKill;
}

const TASK_KEYS = optionKeys<TaskOptions>()('name', 'oomScoreAdj', 'onOomKill');

export class Task {
  readonly id: number;
  readonly name: string;
  readonly #core: Attachment;
  #retired = false;

  /** @internal pool.registerTask() makes tasks. */
  static create(core: Attachment, options: TaskOptions): Task {
    return new Task(core, options);
  }

  private constructor(core: Attachment, options: TaskOptions) {
    validateOptions(options, 'task options', TASK_KEYS);
    if (typeof options.name !== 'string' || options.name === '') throw new InvalidArgTypeError('task name must be a non-empty string');
    if (options.onOomKill !== undefined && typeof options.onOomKill !== 'function') {
      throw new InvalidArgTypeError('onOomKill must be a function');
    }
    const adj = checkAdj(options.oomScoreAdj ?? 0);
    this.#core = core;
    this.id = native.taskCreate(core.slot);
    this.name = options.name.slice(0, MAX_TASK_NAME);
    core.tasks.init(this.id, { name: this.name, adj, home: core.taskId, thread: false });
    core.kills.register(this.id, options.onOomKill);
  }

  /** Runs fn with its allocations charged to this task (sync and async). */
  run<T>(fn: () => T): T {
    if (this.#retired || this.#core.closed) throw new PoolClosedError('the task is unregistered or its pool closed');
    if (typeof fn !== 'function') throw new InvalidArgTypeError('fn must be a function');
    return runAsTask(this.id, fn);
  }

  /** Pages the task holds now. */
  get pages(): number {
    return this.#retired ? 0 : native.taskPages(this.#core.slot, this.id);
  }

  get oomScoreAdj(): number {
    return this.#core.tasks.get(this.id, TASK_WORD.ADJ);
  }

  set oomScoreAdj(adj: number) {
    this.#core.tasks.set(this.id, TASK_WORD.ADJ, checkAdj(adj));
  }

  /** Chosen by the OOM killer. */
  get killed(): boolean {
    return (this.#core.tasks.flags(this.id) & TASK_FLAG.VICTIM) !== 0;
  }

  /** Returns every page the task still holds to the pool and retires it. */
  unregister(): number {
    if (this.#retired) return 0;
    this.#retired = true;
    this.#core.kills.unregister(this.id);
    this.#core.tasks.clear(this.id);
    return this.#core.closed ? 0 : native.taskReclaim(this.#core.slot, this.id, true);
  }

  [Symbol.dispose](): void {
    this.unregister();
  }
}

/** The logical task allocations are attributed to here (task.run), or 0 for the thread's own. */
const taskStore = new AsyncLocalStorage<number>();
let tasksUsed = false;

export function currentTaskId(): number {
  return tasksUsed ? (taskStore.getStore() ?? 0) : 0;
}

export function runAsTask<T>(id: number, fn: () => T): T {
  tasksUsed = true;
  markContextsUsed();
  return taskStore.run(id, fn);
}
