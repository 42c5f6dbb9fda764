/**
 * SharedMutex's shared-word layout and this thread's bookkeeping of the
 * mutexes it knows and the locks it holds (mutex.ts is the lock itself).
 * heldReclaimFsLocks() is what the lockdep check (lockdep.ts) reads.
 */
import type { Pool } from '../mm/pool.js';
import { TF } from '../mm/task-table.js';

/** Holder id of a caller that passed no pool: its threadId plus this. */
export const THREAD_HOLDER_BASE = 100_000;

/** Word indices in the mutex's SharedArrayBuffer. */
export const M = {
  /** The holder's id, 0 when free: the futex word. */
  STATE: 0,
  /** Callers inside a wait loop (a thread terminated while waiting stays counted). */
  WAITERS: 1,
  /** The mutex's id: a random non-zero int32, the name the task table uses. */
  ID: 2,
  /** FLAG_RECLAIM_FS | FLAG_OWNER_DIED. */
  FLAGS: 3,
  /** Acquisitions so far; tells a holder's own acquisition from a later one. */
  SEQ: 4,
  /** MUTEX_MAGIC once initialised. */
  MAGIC: 5,
  /** The id of the pool the mutex is bound to (0: none yet). */
  POOL: 6,
  /** Length in bytes of the name at NAME_BYTE. */
  NAME_LEN: 7,
} as const;
export const NAME_BYTE = 32;
export const NAME_MAX = 96;
export const MUTEX_BYTES = NAME_BYTE + NAME_MAX;
export const MUTEX_MAGIC = 0x5854554d; // 'MUTX'
export const FLAG_RECLAIM_FS = 0x1;
export const FLAG_OWNER_DIED = 0x2;

/** Spin iterations before a sync waiter sleeps: a holder on another core often unlocks within microseconds. */
export const SPIN = 100;
/** Longest single Atomics.wait of a sync waiter before it rechecks the holder. */
export const SLICE_MS = 5;
/** Longest single Atomics.waitAsync of an async waiter before it rechecks the holder. */
export const ASYNC_SLICE_MS = 20;

/** Task flags that make a killable wait give up: chosen as an OOM victim (TIF_MEMDIE), or killed. */
export const KILL_FLAGS = TF.VICTIM | TF.KILLED;

export interface SharedMutexOptions {
  /** For reports; default `mutex-<id in hex>`. At most 96 bytes of it are shared with other threads. */
  name?: string;
  /** A lock that filesystem reclaim could need (the kernel's fs_reclaim lockdep annotation). */
  reclaimFs?: boolean;
}

/** Structured-clonable: send it to a worker and `SharedMutex.attach()` it there. */
export interface SharedMutexHandle {
  readonly sab: SharedArrayBuffer;
  readonly id: number;
  readonly name: string;
  readonly reclaimFs: boolean;
}

export interface LockAsyncOptions {
  /** Stop waiting: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Give up like lockKillable() when the caller's task is chosen as an OOM victim. */
  killable?: boolean;
}

/** The public method a lock went through (Error.captureStackTrace's constructorOpt). */
export type Entry = (...args: never[]) => unknown;

/** This thread's record of a lock it holds. */
export interface Held {
  readonly words: Int32Array;
  readonly id: number;
  readonly name: string;
  readonly holder: number;
  readonly seq: number;
  readonly pool: Pool | undefined;
  /** Where a reclaimFs lock was taken (formatted lazily on read); null for other locks. */
  readonly where: { stack?: string } | null;
}

// --- per-thread state ------------------------------------------------------

/** Locks this thread holds, by mutex id, in acquisition order. */
export const heldHere = new Map<number, Held>();

/** Names of the mutexes created or attached in this thread, by id. */
export const registry = new Map<number, { name: string; refs: number }>();
export const unregister = new FinalizationRegistry<number>((id) => {
  const e = registry.get(id);
  if (e !== undefined && --e.refs === 0) registry.delete(id);
});

/** The name of a mutex created or attached in this thread, by id (for OOM reports). */
export function mutexName(id: number): string | undefined {
  return registry.get(id)?.name;
}

/**
 * The reclaimFs locks this thread holds, oldest first, with the stack of
 * the lock() that took each: what a lockdep check reports when an
 * allocation that may enter filesystem reclaim runs under one.
 */
export function heldReclaimFsLocks(): Array<{ name: string; id: number; stack: string }> {
  const out: Array<{ name: string; id: number; stack: string }> = [];
  for (const h of heldHere.values()) {
    if (h.where !== null && isHeld(h)) out.push({ name: h.name, id: h.id, stack: framesOf(h.where) });
  }
  return out;
}

/** Still this acquisition? (A lock taken over from this thread by a waiter is not.) */
export function isHeld(h: Held): boolean {
  return Atomics.load(h.words, M.STATE) === h.holder && Atomics.load(h.words, M.SEQ) === h.seq;
}

/** The "    at …" lines of a captured stack, without its header line. */
function framesOf(where: { stack?: string }): string {
  const s = where.stack ?? '';
  const nl = s.indexOf('\n');
  return nl < 0 ? '' : s.slice(nl + 1);
}

export const encoder = new TextEncoder();
export const decoder = new TextDecoder();

/** The longest prefix of `bytes` that is at most `max` bytes and ends on a character boundary. */
export function truncateUtf8(bytes: Uint8Array, max: number): Uint8Array {
  if (bytes.length <= max) return bytes;
  let end = max;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

