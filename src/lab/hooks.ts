/**
 * Calling a policy's or workload's hooks. Every call into one goes through
 * callHook(), which turns an exception into a HookError naming the module,
 * the hook and the stack — the report's account of a run that failed. Two
 * exceptions are the interface's own and pass through untouched: Refused
 * (the transaction could not begin) and, where the caller asks for it,
 * ENOMEM (an operation that failed).
 */
import { Refused } from './api.js';

/** A module that could not be loaded, or whose export is not a policy or workload (`ERR_LAB_MODULE`). */
export class LabModuleError extends Error {
  readonly code = 'ERR_LAB_MODULE' as const;
  readonly module: string;
  /** 'import' (it could not be imported, or threw while it was) or 'export' (what it exports is not one). */
  readonly hook: 'import' | 'export';
  /** The stack of what the import threw; the message otherwise. */
  readonly hookStack: string;
  constructor(module: string, hook: 'import' | 'export', message: string, cause?: unknown) {
    super(message);
    this.name = 'LabModuleError';
    this.module = module;
    this.hook = hook;
    this.hookStack = cause instanceof Error ? (cause.stack ?? message) : message;
  }
}

/** A policy's or workload's hook threw (`ERR_LAB_HOOK`): the run it belongs to fails. */
export class HookError extends Error {
  readonly code = 'ERR_LAB_HOOK' as const;
  /** The module's path, or `built-in:<name>`. */
  readonly module: string;
  readonly hook: string;
  /** The stack of what the hook threw. */
  readonly hookStack: string;
  constructor(module: string, hook: string, cause: unknown) {
    const what = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    super(`${module}: ${hook}() threw ${what}`);
    this.name = 'HookError';
    this.module = module;
    this.hook = hook;
    this.hookStack = cause instanceof Error ? (cause.stack ?? what) : what;
  }
}

/** What a run records of a HookError (report.json). */
export interface HookFailure {
  module: string;
  hook: string;
  /** The worker it happened in ('fs-0'), or 'main' for setup(). */
  where: string;
  message: string;
  stack: string;
}

export function failureOf(e: unknown, where: string): HookFailure {
  if (e instanceof HookError || e instanceof LabModuleError) return { module: e.module, hook: e.hook, where, message: e.message, stack: e.hookStack };
  const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return { module: 'nofail lab', hook: 'worker', where, message, stack: e instanceof Error ? (e.stack ?? message) : message };
}

export function isEnomem(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === 'ENOMEM';
}

/** Runs one hook; what it throws becomes a HookError unless it is the interface's own (see above). */
export function callHook<T>(module: string, hook: string, fn: () => T, passEnomem = false): T {
  try {
    return fn();
  } catch (e) {
    throw asHookError(module, hook, e, passEnomem);
  }
}

/** callHook for a hook that may return a promise. */
export async function callHookAsync<T>(module: string, hook: string, fn: () => T | Promise<T>, passEnomem = false): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw asHookError(module, hook, e, passEnomem);
  }
}

function asHookError(module: string, hook: string, e: unknown, passEnomem: boolean): unknown {
  if (e instanceof HookError || e instanceof Refused || (passEnomem && isEnomem(e))) return e;
  return new HookError(module, hook, e);
}
