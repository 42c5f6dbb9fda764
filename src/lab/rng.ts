/**
 * Reproducible randomness for the lab: every random choice of an operation
 * is a pure function of (seed, worker index, op index), so two runs with the
 * same seed issue the same operation sequence on every worker, whatever the
 * timing, and a respawned worker goes on where its predecessor stopped.
 *
 * hash32 is the murmur3 finaliser over the mixed inputs; OpRng draws a
 * short stream (xorshift32) from one such hash.
 */

/** murmur3's fmix32: a bijection with good avalanche. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 32-bit hash of up to four 32-bit integers. */
export function hash32(a: number, b = 0, c = 0, d = 0): number {
  let h = fmix32((a ^ 0x9e3779b9) >>> 0);
  h = fmix32((h ^ Math.imul(b + 1, 0x27d4eb2d)) >>> 0);
  h = fmix32((h ^ Math.imul(c + 1, 0x165667b1)) >>> 0);
  h = fmix32((h ^ Math.imul(d + 1, 0x61c88647)) >>> 0);
  return h;
}

/** The random stream of one operation: OpRng(seed, worker, op) is the same wherever it is made. */
export class OpRng {
  #s: number;

  constructor(seed: number, worker: number, op: number, salt = 0) {
    this.#s = hash32(seed, worker, op, salt) || 0x6d2b79f5;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let x = this.#s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#s = x >>> 0;
    return fmix32(this.#s) / 2 ** 32;
  }

  /** Uniform integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** FNV-1a over 32-bit words: the digest of an operation sequence. */
export function fnv1a(h: number, word: number): number {
  for (let i = 0; i < 4; i++) {
    h ^= (word >>> (8 * i)) & 0xff;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export const FNV_OFFSET = 0x811c9dc5;
