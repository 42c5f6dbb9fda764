/**
 * PageCache: the blocks of one real file cached in pool pages — the page
 * cache of mm/filemap.c in miniature, with the reclaim rules of mm/vmscan.c
 * that make GFP_NOFS and GFP_NOIO matter (DESIGN §3 Reclaim; kernel-mm §5.3):
 *
 *   clean page     dropped at once                        'pagecache-clean'  needs 'none'
 *   dirty page     written back with real I/O, dropped    'pagecache-dirty'  needs 'io'
 *   index node     freed with its whole idle extent       'pagecache-index'  needs 'fs'
 *
 * A block is 4096 bytes in one order-0 page, allocated with the caller's
 * mask (a NOFS transaction's reads are NOFS allocations). I/O is
 * synchronous node:fs on one fd the cache opens (creating the file). The
 * cache belongs to the thread that made it: its shrinkers run only there,
 * for this thread's reclaim, its kswapd, and other threads' requests.
 * Bookkeeping — index nodes, shadow entries, LRU lists — is in
 * pagecache-index.ts.
 *
 * The index shrinker is the cache's metadata shrinker: the kernel's
 * shadow-node shrinker plus super_cache_scan() evicting unused inodes with
 * their pages. It frees nodes holding only shadow entries first (losing
 * only refault information), then idle extents whose resident pages are all
 * clean and unpinned, pages and node together, giving an extent referenced
 * since its last look a second chance. It needs FS because the index is the
 * filesystem's metadata: a caller that cleared __GFP_FS may be in the middle
 * of changing it, which is why super_cache_scan() stops without __GFP_FS.
 *
 * Re-entrancy. pool.alloc() in read()/write()/pin() may enter direct
 * reclaim, which runs these shrinkers on this thread before alloc returns
 * (so does answering another thread's reclaim request between wait slices).
 * What keeps that safe:
 *   1. A block enters the index only after its page is allocated and
 *      filled: reclaim never sees a half-filled block.
 *   2. The node it will enter is held busy across the allocation, so the
 *      index shrinker cannot free it underneath the fill.
 *   3. Pinned blocks are off the LRU lists and make their node busy.
 *   4. Shrinkers never allocate, and finish their bookkeeping before calling
 *      the onWriteback/onDrop hooks (which must not call into the cache).
 */
import { closeSync, constants as fsc, fstatSync, fsyncSync, openSync, readSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BadPageError, InvalidArgTypeError, NofailError, OutOfRangeError, PoolClosedError } from '../../errors.js';
import { validateOptions } from '../../validators.js';
import { GFP, type GfpMask, type Page, PAGE_SIZE, Pool, SHRINK_STOP, validateGfp } from '../../mm/index.js';
import { internals, type VmStat } from '../../mm/internal.js';
import { type CachedBlock, type IndexNode, NODE_SLOTS, PageIndex } from './index-tree.js';

export { NODE_SLOTS };
export { PinnedBlock } from './pinned.js';
export { MAX_BLOCK, type PageCacheOptions, type PageCacheStats } from './types.js';
import { WRITE_CLUSTER, writeFully } from './io.js';
import { PinnedBlock } from './pinned.js';
import { checkBlock, type PageCacheOptions, type PageCacheStats } from './types.js';
export class PageCache implements Disposable {
  /** The file's path. */
  readonly file: string;
  readonly #pool: Pool;
  readonly #fd: number;
  readonly #onWriteback: PageCacheOptions['onWriteback'];
  readonly #onDrop: PageCacheOptions['onDrop'];
  readonly #vmstat: VmStat;
  readonly #index = new PageIndex();
  readonly #unregister: (() => void)[] = [];
  /** i_size: the file's logical size, dirty data not yet written included. */
  #size: number;
  #closed = false;
  /** A reclaim writeback error not yet reported (errseq: the next sync() throws it once). */
  #wbError: { error: unknown } | null = null;
  #hits = 0;
  #misses = 0;
  #writebacks = 0;
  #reclaimWritebacks = 0;
  #dropped = 0;
  #nodesFreed = 0;
  #writebackErrors = 0;
  readonly #scans = { clean: 0, dirty: 0, index: 0 };

  constructor(pool: Pool, options: PageCacheOptions) {
    if (!(pool instanceof Pool)) throw new InvalidArgTypeError('pool must be a Pool');
    if (pool.closed) throw new PoolClosedError();
    validateOptions(options, 'options', ['file', 'onWriteback', 'onDrop'] satisfies (keyof PageCacheOptions)[]);
    const { file, onWriteback, onDrop } = options;
    if (typeof file === 'string' ? file === '' : !(file instanceof URL)) {
      throw new InvalidArgTypeError('options.file must be a non-empty path string or a file: URL');
    }
    if (onWriteback !== undefined && typeof onWriteback !== 'function') throw new InvalidArgTypeError('options.onWriteback must be a function');
    if (onDrop !== undefined && typeof onDrop !== 'function') throw new InvalidArgTypeError('options.onDrop must be a function');
    this.file = typeof file === 'string' ? file : fileURLToPath(file);
    this.#pool = pool;
    this.#onWriteback = onWriteback;
    this.#onDrop = onDrop;
    this.#vmstat = internals(pool).vmstat;
    this.#fd = openSync(this.file, fsc.O_RDWR | fsc.O_CREAT, 0o666);
    try {
      this.#size = fstatSync(this.#fd).size;
      const ix = this.#index;
      this.#unregister.push(
        pool.registerShrinker({ name: 'pagecache-clean', needs: 'none', count: () => ix.clean.length, scan: (nr) => this.#scanClean(nr) }),
        pool.registerShrinker({ name: 'pagecache-dirty', needs: 'io', count: () => ix.dirty.length, scan: (nr) => this.#scanDirty(nr) }),
        pool.registerShrinker({ name: 'pagecache-index', needs: 'fs', count: () => ix.idlePages(), scan: (nr) => this.#scanIndex(nr) }),
      );
    } catch (e) {
      for (const u of this.#unregister.splice(0)) u();
      closeSync(this.#fd);
      throw e;
    }
  }

  /** The file's logical size in bytes (i_size), dirty data not yet written included. */
  get size(): number {
    return this.#size;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The block's bytes, read from the file into a fresh pool page on a miss
   * (zeros past the end of the file). The view is valid until the block is
   * evicted — by any allocation that reclaims, or kswapd between turns of
   * the event loop — so pin() what must outlive either. A miss throws what
   * pool.alloc(gfp) throws (ENOMEM; ERR_WOULD_BLOCK on the main thread).
   */
  read(block: number, gfp: GfpMask = GFP.KERNEL): Uint8Array {
    this.#check(block, gfp);
    return this.#get(block, gfp, true).bytes;
  }

  /**
   * Copies `data` into the block at `offset` and marks it dirty. A partial
   * write to a block not in the cache reads the block first; a full-block
   * write does not.
   */
  write(block: number, data: Uint8Array, offset = 0, gfp: GfpMask = GFP.KERNEL): void {
    this.#check(block, gfp);
    if (!(data instanceof Uint8Array)) throw new InvalidArgTypeError('data must be a Uint8Array');
    if (typeof offset !== 'number') throw new InvalidArgTypeError(`offset must be a number; received ${typeof offset}`);
    if (!Number.isInteger(offset) || offset < 0 || offset + data.length > PAGE_SIZE) {
      throw new OutOfRangeError(`offset must be an integer with offset + data.length <= ${PAGE_SIZE}; received ${offset} + ${data.length}`);
    }
    if (data.length === 0) return;
    const e = this.#get(block, gfp, offset !== 0 || data.length !== PAGE_SIZE);
    e.bytes.set(data, offset);
    this.#index.markDirty(e);
    const end = block * PAGE_SIZE + offset + data.length;
    if (end > this.#size) this.#size = end;
  }

  /** Brings the block in (as read() does) and pins it until the handle is released. */
  pin(block: number, gfp: GfpMask = GFP.KERNEL): PinnedBlock {
    this.#check(block, gfp);
    const e = this.#get(block, gfp, true);
    this.#index.pin(e);
    let live = true;
    return new PinnedBlock(block, e.bytes, () => {
      // After close() every page is gone; a late release has nothing to do.
      if (live && !this.#closed && e.pins > 0) this.#index.unpin(e);
      live = false;
    });
  }

  /** Drops one pin of a block taken with pin() (prefer the handle's release()). */
  unpin(block: number): void {
    this.#check(block, GFP.KERNEL);
    const e = this.#index.blocks.get(block);
    if (e === undefined || e.pins === 0) throw new BadPageError(`block ${block} is not pinned`);
    this.#index.unpin(e);
  }

  /** Is the block in the cache? (Not counted as a hit, not a reference.) */
  has(block: number): boolean {
    return this.#index.blocks.has(block);
  }

  /**
   * Writes dirty pages to the file — one block, or all of them — and keeps
   * them cached, clean. Consecutive blocks go out in one writev(). Returns
   * the pages written; an I/O error is thrown after the ones before it
   * were written.
   */
  writeback(block?: number): number {
    this.#check(block ?? 0, GFP.KERNEL);
    if (block === undefined) return this.#writebackAll();
    const e = this.#index.blocks.get(block);
    return e !== undefined && e.dirty ? this.#writebackBlocks([e]) : 0;
  }

  /**
   * writeback() of every dirty page, then fsync(). Throws an error that
   * reclaim met while writing pages back since the last sync (errseq), once.
   */
  sync(): void {
    if (this.#closed) throw new PoolClosedError('the page cache is closed');
    this.#writebackAll();
    fsyncSync(this.#fd);
    const wb = this.#wbError;
    if (wb !== null) {
      this.#wbError = null;
      throw wb.error;
    }
  }

  get stats(): PageCacheStats {
    const ix = this.#index;
    return {
      cached: ix.blocks.size,
      dirty: ix.dirtyBlocks,
      clean: ix.blocks.size - ix.dirtyBlocks,
      pinned: ix.pinned,
      nodes: ix.nodes.size,
      hits: this.#hits,
      misses: this.#misses,
      refaults: ix.refaults,
      writebacks: this.#writebacks,
      reclaimWritebacks: this.#reclaimWritebacks,
      dropped: this.#dropped,
      nodesFreed: this.#nodesFreed,
      writebackErrors: this.#writebackErrors,
      scans: { ...this.#scans },
    };
  }

  /**
   * Syncs, frees every page (data and index), unregisters the shrinkers and
   * closes the file; pins are void afterwards. An error from the final sync
   * is thrown after everything was released.
   */
  close(): void {
    if (this.#closed) return;
    for (const u of this.#unregister.splice(0)) u();
    let error: unknown = null;
    if (this.#pool.closed) {
      // Its pages went back when this thread detached; dirty data cannot be written.
      const lost = this.#index.dirtyBlocks;
      if (lost > 0) error = new PoolClosedError(`the pool was closed before the page cache: ${lost} dirty blocks of ${this.file} were lost`);
      this.#index.clear();
    } else {
      try {
        this.sync();
      } catch (e) {
        error = e;
      }
      for (const page of this.#index.clear()) this.#pool.free(page);
    }
    this.#closed = true;
    closeSync(this.#fd);
    if (error !== null) throw error;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Checks the index's invariants (pagecache-index.ts) and that the file is no longer than its logical size. For tests. */
  checkInvariants(): void {
    const why = this.#index.check() ?? (fstatSync(this.#fd).size > this.#size ? `the file is longer than the logical size ${this.#size}` : null);
    if (why !== null) throw new NofailError('ERR_INVARIANT', `page cache of ${this.file} inconsistent: ${why}`);
  }

  // --- lookup and fill ---------------------------------------------------

  #check(block: number, gfp: GfpMask): void {
    if (this.#closed) throw new PoolClosedError('the page cache is closed');
    checkBlock(block);
    if (gfp !== GFP.KERNEL) validateGfp(gfp);
  }

  #get(block: number, gfp: GfpMask, readFile: boolean): CachedBlock {
    const e = this.#index.blocks.get(block);
    if (e === undefined) {
      this.#misses++;
      return this.#fault(block, gfp, readFile);
    }
    this.#hits++;
    this.#index.touch(e);
    return e;
  }

  /** A miss: allocate (reclaim may run inside, see the header), fill, then enter the index. */
  #fault(block: number, gfp: GfpMask, readFile: boolean): CachedBlock {
    const ix = this.#index;
    const node = ix.nodeOf(block) ?? ix.addNode(block, this.#pool.alloc(gfp));
    node.busy++;
    let page: Page | null = null;
    try {
      page = this.#pool.alloc(gfp);
      const bytes = page.bytes;
      if (readFile) {
        // Zeros past the end of the file, holes read as zeros by the kernel.
        const pos = block * PAGE_SIZE;
        let filled = 0;
        while (filled < PAGE_SIZE && pos + filled < this.#size) {
          const n = readSync(this.#fd, bytes, filled, PAGE_SIZE - filled, pos + filled);
          if (n === 0) break;
          filled += n;
        }
        bytes.fill(0, filled);
      }
      const e = ix.insert(block, page, node);
      page = null;
      return e;
    } finally {
      node.busy--;
      if (page !== null) this.#pool.free(page);
      const empty = ix.removeIfEmpty(node);
      if (empty !== null) this.#pool.free(empty);
    }
  }

  // --- writeback ---------------------------------------------------------

  #writebackAll(): number {
    const victims: CachedBlock[] = [];
    for (const e of this.#index.blocks.values()) if (e.dirty) victims.push(e);
    return this.#writebackBlocks(victims);
  }

  #writebackBlocks(victims: CachedBlock[]): number {
    const { written, error } = this.#writePages(victims);
    for (const e of written) this.#index.markClean(e);
    if (written.length > 0) {
      this.#vmstat.add('pagecache_writeback', written.length);
      this.#onWriteback?.(written.length, 'sync');
    }
    if (error !== undefined) throw error;
    return written.length;
  }

  /**
   * Writes dirty blocks in runs of consecutive blocks, each run one
   * writev(), never past the logical size. Stops at the first error and
   * returns it with the blocks written before it (a failed run stays dirty).
   */
  #writePages(victims: CachedBlock[]): { written: CachedBlock[]; error?: unknown } {
    victims.sort((a, b) => a.block - b.block);
    const written: CachedBlock[] = [];
    let error: unknown;
    try {
      for (let i = 0; i < victims.length; ) {
        const first = victims[i]!.block;
        const bufs: Uint8Array[] = [];
        let j = i;
        for (; j < victims.length && victims[j]!.block === first + (j - i) && j - i < WRITE_CLUSTER; j++) {
          const e = victims[j]!;
          const len = Math.min(PAGE_SIZE, this.#size - e.block * PAGE_SIZE);
          bufs.push(len === PAGE_SIZE ? e.bytes : e.bytes.subarray(0, Math.max(len, 0)));
        }
        writeFully(this.#fd, bufs, first * PAGE_SIZE);
        for (; i < j; i++) written.push(victims[i]!);
      }
    } catch (err) {
      this.#writebackErrors++;
      error = err;
    }
    this.#writebacks += written.length;
    return { written, error };
  }

  // --- the shrinkers (inside reclaim; they never allocate) -----------------

  /** 'pagecache-clean': the oldest clean pages, dropped (a shadow stays in the index). */
  #scanClean(nr: number): number {
    this.#scans.clean++;
    const ix = this.#index;
    let freed = 0;
    for (; freed < nr && ix.clean.head !== null; freed++) this.#pool.free(ix.evict(ix.clean.head));
    this.#dropped += freed;
    if (freed > 0) {
      this.#vmstat.add('pagecache_dropped', freed);
      this.#onDrop?.(freed);
    }
    return freed;
  }

  /** 'pagecache-dirty': the oldest dirty pages, written back (clustered), then dropped. */
  #scanDirty(nr: number): number {
    this.#scans.dirty++;
    const ix = this.#index;
    const victims: CachedBlock[] = [];
    for (let e = ix.dirty.head; e !== null && victims.length < nr; e = e.next) victims.push(e);
    if (victims.length === 0) return 0;
    const { written, error } = this.#writePages(victims);
    for (const e of written) {
      ix.markClean(e);
      this.#pool.free(ix.evict(e));
    }
    this.#reclaimWritebacks += written.length;
    this.#dropped += written.length;
    if (error !== undefined) this.#wbError ??= { error };
    if (written.length > 0) {
      this.#vmstat.add('pagecache_writeback', written.length);
      this.#vmstat.add('pagecache_dropped', written.length);
      this.#onWriteback?.(written.length, 'reclaim');
      this.#onDrop?.(written.length);
    }
    return written.length === 0 && error !== undefined ? SHRINK_STOP : written.length;
  }

  /** 'pagecache-index': shadow-only nodes first, then idle clean extents, oldest first, with a second chance. */
  #scanIndex(nr: number): number {
    this.#scans.index++;
    const ix = this.#index;
    let freed = 0;
    const extents: IndexNode[] = [];
    for (const node of [...ix.nodes.values()]) {
      if (freed >= nr) break;
      if (!node.idle) continue;
      if (node.resident === 0) freed += this.#freeExtent(node);
      else extents.push(node);
    }
    for (const node of extents) {
      if (freed >= nr) break;
      if (node.referenced) {
        node.referenced = false;
        ix.rotate(node);
      } else {
        freed += this.#freeExtent(node);
      }
    }
    return freed;
  }

  #freeExtent(node: IndexNode): number {
    const pages = this.#index.removeExtent(node);
    for (const p of pages) this.#pool.free(p);
    const dropped = pages.length - 1;
    this.#nodesFreed++;
    this.#dropped += dropped;
    if (dropped > 0) {
      this.#vmstat.add('pagecache_dropped', dropped);
      this.#onDrop?.(dropped);
    }
    return pages.length;
  }
}
