/**
 * This thread's bookkeeping of SharedMutexes: the names of the mutexes it
 * created or attached (for OOM reports), and the locks it holds, with where
 * each reclaimFs lock was taken (what the lockdep check reports). Per thread
 * by nature: a lock is held by a thread, and a name is known where a handle
 * was opened. mutex.ts is the lock itself.
 */
import type { Pool } from '../../mm/index.js';
import { registerReclaimFsLocks } from '../../mm/internal.js';
import { MUTEX_WORD } from './layout.js';

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

/** Locks this thread holds, by mutex id, in acquisition order. */
const heldHere = new Map<number, Held>();

export function recordHeld(h: Held): void {
  heldHere.set(h.id, h);
}

export function forgetHeld(id: number): void {
  heldHere.delete(id);
}

/** This thread's record of its acquisition of mutex `id`, if any (it may have been taken over since: isHeld). */
export function heldRecord(id: number): Held | undefined {
  return heldHere.get(id);
}

/** Still this acquisition? (A lock taken over from this thread by a waiter is not.) */
export function isHeld(h: Held): boolean {
  return Atomics.load(h.words, MUTEX_WORD.STATE) === h.holder && Atomics.load(h.words, MUTEX_WORD.SEQ) === h.seq;
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
registerReclaimFsLocks(heldReclaimFsLocks);

/** The "    at …" lines of a captured stack, without its header line. */
function framesOf(where: { stack?: string }): string {
  const s = where.stack ?? '';
  const nl = s.indexOf('\n');
  return nl < 0 ? '' : s.slice(nl + 1);
}

/** Names of the mutexes created or attached in this thread, by id; an entry goes with its last SharedMutex. */
const names = new Map<number, { name: string; refs: number }>();
const forgetName = new FinalizationRegistry<number>((id) => {
  const e = names.get(id);
  if (e !== undefined && --e.refs === 0) names.delete(id);
});

/** Remembers the name of a SharedMutex opened in this thread for as long as it lives. */
export function rememberName(mutex: object, id: number, name: string): void {
  const e = names.get(id);
  if (e === undefined) names.set(id, { name, refs: 1 });
  else e.refs++;
  forgetName.register(mutex, id);
}

/** The name of a mutex created or attached in this thread, by id (for OOM reports). */
export function mutexName(id: number): string | undefined {
  return names.get(id)?.name;
}
