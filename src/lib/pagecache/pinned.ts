/**
 * A pinned block: the handle PageCache.pin() returns. The block is never
 * evicted until the handle is released; `using b = cache.pin(n)` releases
 * it at the end of the scope.
 */
export class PinnedBlock implements Disposable {
  readonly block: number;
  /** The block's page; valid until release. */
  readonly bytes: Uint8Array;
  #release: (() => void) | null;

  constructor(block: number, bytes: Uint8Array, release: () => void) {
    this.block = block;
    this.bytes = bytes;
    this.#release = release;
  }

  /** Drops this pin (once; later calls do nothing). */
  release(): void {
    const r = this.#release;
    this.#release = null;
    r?.();
  }

  [Symbol.dispose](): void {
    this.release();
  }
}
