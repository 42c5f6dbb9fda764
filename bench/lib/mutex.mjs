// The lock a user would put around @thi.ng/malloc's MemPool to share it
// between workers (it is not thread-safe: its state lives in the
// SharedArrayBuffer, unguarded). One Int32 word of another SharedArrayBuffer,
// the classic futex mutex (Drepper, "Futexes Are Tricky", mutex 2):
//   0 unlocked, 1 locked, 2 locked and someone may sleep on it.
// lock() spins a little on compareExchange, then sleeps with Atomics.wait;
// unlock() notifies only when the word said 2. The compareExchange that
// takes the lock and the exchange that drops it are sequentially consistent
// Atomics, so the pool's plain reads and writes in between are ordered
// after the previous holder's.
const SPINS = 100;

export class Mutex {
  constructor(sab, index = 0) {
    this.i32 = new Int32Array(sab);
    this.index = index;
  }

  lock() {
    const w = this.i32;
    const i = this.index;
    let c = Atomics.compareExchange(w, i, 0, 1);
    if (c === 0) return;
    for (let s = 0; s < SPINS && c !== 0; s++) {
      c = Atomics.load(w, i) === 0 ? Atomics.compareExchange(w, i, 0, 1) : 1;
    }
    if (c === 0) return;
    if (c !== 2) c = Atomics.exchange(w, i, 2);
    while (c !== 0) {
      Atomics.wait(w, i, 2);
      c = Atomics.exchange(w, i, 2);
    }
  }

  unlock() {
    if (Atomics.exchange(this.i32, this.index, 0) === 2) Atomics.notify(this.i32, this.index, 1);
  }
}
