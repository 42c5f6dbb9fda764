/**
 * PageCache's public types — options, stats, a pinned block — and its
 * small helpers (block-number checks, a full vectored write).
 */
import { writeSync, writevSync } from 'node:fs';
import { InvalidArgTypeError, OutOfRangeError } from '../../errors.js';

/** Largest block number (a 16 TiB file). */
export const MAX_BLOCK = 2 ** 32 - 1;
/** Most blocks one writev() carries (IOV_MAX is 1024 on Linux). */
export const WRITE_CLUSTER = 256;

export interface PageCacheOptions {
  /** The file to cache; created if missing. */
  file: string | URL;
  /** Called after pages were written back: by reclaim, or by writeback()/sync()/close(). */
  onWriteback?: (pages: number, reason: 'reclaim' | 'sync') => void;
  /** Called after reclaim dropped data pages from the cache. */
  onDrop?: (pages: number) => void;
}

export interface PageCacheStats {
  /** Data pages in the cache. */
  cached: number;
  dirty: number;
  clean: number;
  /** Blocks with at least one pin. */
  pinned: number;
  /** Index nodes (one pool page each). */
  nodes: number;
  hits: number;
  misses: number;
  /** Misses on a block whose shadow entry was still in the index. */
  refaults: number;
  /** Pages written to the file, by reclaim and by writeback()/sync(). */
  writebacks: number;
  /** Of those, written by the dirty shrinker. */
  reclaimWritebacks: number;
  /** Data pages dropped by reclaim (all three shrinkers). */
  dropped: number;
  /** Index nodes freed by the index shrinker. */
  nodesFreed: number;
  writebackErrors: number;
  /** scan() calls per shrinker. */
  scans: { clean: number; dirty: number; index: number };
}

/** A pinned block: never evicted until released. `using b = cache.pin(n)` releases at scope end. */
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

export function checkBlock(block: unknown): asserts block is number {
  if (typeof block !== 'number') throw new InvalidArgTypeError(`block must be a number; received ${typeof block}`);
  if (!Number.isInteger(block) || block < 0 || block > MAX_BLOCK) {
    throw new OutOfRangeError(`block must be an integer from 0 to ${MAX_BLOCK}; received ${block}`);
  }
}

/** writev() that finishes a short write buffer by buffer. */
export function writeFully(fd: number, bufs: Uint8Array[], pos: number): void {
  let done = writevSync(fd, bufs, pos);
  for (const b of bufs) {
    let off = Math.min(done, b.length);
    done -= off;
    while (off < b.length) off += writeSync(fd, b, off, b.length - off, pos + off);
    pos += b.length;
  }
}

