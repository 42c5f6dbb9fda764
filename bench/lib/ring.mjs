// A single-producer single-consumer ring of (a, b, c) int triples in a
// SharedArrayBuffer: how the handoff pattern moves pages between threads,
// as a fast real program would (no postMessage, no event loop).
//
// Layout (Int32Array): HEAD, TAIL, WANT_DATA, WANT_ROOM, then CAPACITY
// triples. HEAD is written by the consumer only, TAIL by the producer only;
// both count entries since the start (wrapping at 2^31 is fine: only
// differences are used). The producer fills entries, then publishes them
// with one Atomics.store of TAIL (release); the consumer reads TAIL with
// Atomics.load (acquire) before reading entries, and gives them back with
// one store of HEAD. So an entry is never read before it is written, nor
// overwritten before it is read.
//
// Waiting: a side that cannot go on raises its WANT_ flag, re-checks, and
// Atomics.wait()s with a short timeout; the other side notifies only when
// the flag is up (so the common path costs no futex call). Store-flag-then-
// check on one side and store-index-then-check-flag on the other are all
// sequentially consistent Atomics, so at least one side sees the other:
// no lost wake-up, and the timeout bounds any that slipped through anyway.
const HEAD = 0;
const TAIL = 1;
const WANT_DATA = 2;
const WANT_ROOM = 3;
const HEADER = 4;
export const RING_CAPACITY = 1024;  // a power of two
const MASK = RING_CAPACITY - 1;

export function ringBuffer() {
  return new SharedArrayBuffer(4 * (HEADER + 3 * RING_CAPACITY));
}

export class Ring {
  constructor(sab) {
    this.i32 = new Int32Array(sab);
  }

  /** Entries the producer may write now. */
  room() {
    return RING_CAPACITY - (this.i32[TAIL] - Atomics.load(this.i32, HEAD));
  }

  /** Entries the consumer may read now. */
  available() {
    return Atomics.load(this.i32, TAIL) - this.i32[HEAD];
  }

  /** Producer: the k-th entry after the published ones. */
  put(k, a, b, c) {
    const at = HEADER + 3 * ((this.i32[TAIL] + k) & MASK);
    this.i32[at] = a;
    this.i32[at + 1] = b;
    this.i32[at + 2] = c;
  }

  /** Producer: publishes n entries written with put(). */
  commit(n) {
    Atomics.store(this.i32, TAIL, this.i32[TAIL] + n);
    if (Atomics.load(this.i32, WANT_DATA) !== 0) Atomics.notify(this.i32, TAIL);
  }

  /** Consumer: the offset in i32 of the k-th unread entry (a, b, c at +0, +1, +2). */
  at(k) {
    return HEADER + 3 * ((this.i32[HEAD] + k) & MASK);
  }

  /** Consumer: gives n read entries back to the producer. */
  release(n) {
    Atomics.store(this.i32, HEAD, this.i32[HEAD] + n);
    if (Atomics.load(this.i32, WANT_ROOM) !== 0) Atomics.notify(this.i32, HEAD);
  }

  /** Consumer: sleeps (at most `ms`) until something may have been published. */
  waitData(ms = 2) {
    const tail = Atomics.load(this.i32, TAIL);
    Atomics.store(this.i32, WANT_DATA, 1);
    if (tail - this.i32[HEAD] === 0) Atomics.wait(this.i32, TAIL, tail, ms);
    Atomics.store(this.i32, WANT_DATA, 0);
  }

  /** Producer: sleeps (at most `ms`) until the consumer may have made room for `n`. */
  waitRoom(n, ms = 2) {
    const head = Atomics.load(this.i32, HEAD);
    Atomics.store(this.i32, WANT_ROOM, 1);
    if (RING_CAPACITY - (this.i32[TAIL] - head) < n) Atomics.wait(this.i32, HEAD, head, ms);
    Atomics.store(this.i32, WANT_ROOM, 0);
  }
}
