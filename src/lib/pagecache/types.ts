/**
 * What a PageCache's caller passes and gets: its options, its stats, and
 * block numbers (their bound and their check). The pinned-block handle is
 * pinned.ts; the file I/O, io.ts.
 */
import { InvalidArgTypeError, OutOfRangeError } from '../../errors.js';

/** Largest block number (a 16 TiB file). */
export const MAX_BLOCK = 2 ** 32 - 1;

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

export function checkBlock(block: unknown): asserts block is number {
  if (typeof block !== 'number') throw new InvalidArgTypeError(`block must be a number; received ${typeof block}`);
  if (!Number.isInteger(block) || block < 0 || block > MAX_BLOCK) {
    throw new OutOfRangeError(`block must be an integer from 0 to ${MAX_BLOCK}; received ${block}`);
  }
}
