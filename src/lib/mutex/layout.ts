/**
 * A SharedMutex's shared memory: one small SharedArrayBuffer that every
 * thread using the mutex maps. Words (Int32) first, then the name's bytes.
 * Every access to a word is an Atomics operation (mutex.ts states the
 * ordering rules).
 */

/** Word indices in the mutex's SharedArrayBuffer. */
export const MUTEX_WORD = {
  /** The holder's id, 0 when free: the futex word. */
  STATE: 0,
  /** Callers inside a wait loop (a thread terminated while waiting stays counted). */
  WAITERS: 1,
  /** The mutex's id: a random non-zero int32, the name the task table uses. */
  ID: 2,
  /** MUTEX_FLAG bits. */
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

export const MUTEX_FLAG = {
  /** A lock that filesystem reclaim may need (lockdep's fs_reclaim annotation). */
  RECLAIM_FS: 0x1,
  /** Set while an acquisition that took the lock over from a dead holder holds it (EOWNERDEAD). */
  OWNER_DIED: 0x2,
} as const;

/** Where the name's UTF-8 bytes start, and how many of them are shared. */
export const NAME_BYTE = 32;
export const NAME_MAX = 96;
export const MUTEX_BYTES = NAME_BYTE + NAME_MAX;
export const MUTEX_MAGIC = 0x5854554d; // 'MUTX'

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Makes the shared words of a new mutex: its id, flags and (the first NAME_MAX bytes of) its name. */
export function initMutexWords(id: number, name: string, reclaimFs: boolean): Int32Array {
  const sab = new SharedArrayBuffer(MUTEX_BYTES);
  const words = new Int32Array(sab);
  const bytes = truncateUtf8(encoder.encode(name), NAME_MAX);
  new Uint8Array(sab, NAME_BYTE, NAME_MAX).set(bytes);
  Atomics.store(words, MUTEX_WORD.NAME_LEN, bytes.length);
  Atomics.store(words, MUTEX_WORD.ID, id);
  Atomics.store(words, MUTEX_WORD.FLAGS, reclaimFs ? MUTEX_FLAG.RECLAIM_FS : 0);
  Atomics.store(words, MUTEX_WORD.MAGIC, MUTEX_MAGIC);
  return words;
}

/** The words of an existing mutex, or null if `sab` is not one. */
export function mutexWords(sab: SharedArrayBuffer): Int32Array | null {
  if (sab.byteLength < MUTEX_BYTES || Atomics.load(new Int32Array(sab), MUTEX_WORD.MAGIC) !== MUTEX_MAGIC) return null;
  return new Int32Array(sab, 0, MUTEX_BYTES / 4);
}

/** The shared prefix of the mutex's name. */
export function sharedName(words: Int32Array): string {
  return decoder.decode(new Uint8Array(words.buffer, NAME_BYTE, Atomics.load(words, MUTEX_WORD.NAME_LEN)).slice());
}

/** The longest prefix of `bytes` that is at most `max` bytes and ends on a character boundary. */
function truncateUtf8(bytes: Uint8Array, max: number): Uint8Array {
  if (bytes.length <= max) return bytes;
  let end = max;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}
