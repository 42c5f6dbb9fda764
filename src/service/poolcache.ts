/**
 * PoolCache: a size-bounded key → bytes cache whose values live in pool
 * pages and which gives them back under pressure.
 *
 * Recency is lru-cache's (its maxSize counts pages here); what this file
 * adds is the memory: a value is copied into order-0 pages (order 0 so that
 * a fragmented pool can still cache, as the kernel's page cache does), and
 * the cache registers a shrinker (needs 'none': freeing a clean copy needs
 * neither I/O nor the filesystem), so direct reclaim and kswapd evict its
 * coldest entries before anyone is refused memory.
 *
 * Readers either copy (get) or pin (acquire): a pinned entry that is
 * evicted, replaced or deleted leaves the cache at once but keeps its pages
 * until the last release(), so a response still being written is never
 * served someone else's bytes. Counting rule: count() reports every page
 * the cache holds; scan() returns only the pages actually freed (a pinned
 * entry's pages are freed later, by release()).
 *
 * Like pages, a PoolCache belongs to the thread that made it.
 */
import { LRUCache } from 'lru-cache';
import { AllocError, InvalidArgTypeError, OutOfRangeError, PoolClosedError, WouldBlockError } from '../errors.js';
import { validateOptions } from '../validators.js';
import { copyIntoPages, pageViews } from './span.js';
import { GFP, type GfpMask, type Page, PAGE_SIZE, parseSize, type Pool, validateGfp } from '../mm/index.js';

export interface PoolCacheOptions {
  /** Upper bound on the bytes held, in whole pages (a number of bytes or a size string). */
  maxBytes: number | string;
  /**
   * Upper bound on the number of entries; none by default. At most 2^24
   * (lru-cache preallocates for it), unless it is at or above maxBytes'
   * pages: then it never binds and is ignored.
   */
  maxEntries?: number;
  /**
   * How values are allocated. Default GFP.KERNEL | NORETRY | NOWARN: one
   * light reclaim pass (which may evict this cache's own cold entries),
   * never the OOM killer; set() returns false when that is not enough.
   */
  gfp?: GfpMask;
  /** The shrinker's name in reports; default 'pool-cache'. */
  name?: string;
  /** Shrinker seeks (cost of recreating an entry); default 2. */
  seeks?: number;
  /**
   * Pages per shrinker scan call; default 32 (SWAP_CLUSTER_MAX, what one
   * reclaim pass aims to free). The shrinker default of 128 would take a
   * small cache whole on the first pass that scans it at all.
   */
  batch?: number;
}

export interface PoolCacheStats {
  entries: number;
  /** Pages held, pinned-and-evicted entries included. */
  pages: number;
  /** Pages of evicted entries still pinned by a reader. */
  pinnedEvictedPages: number;
  hits: number;
  misses: number;
  sets: number;
  /** set() calls that could not get pages (nothing was cached). */
  setFailures: number;
  /** Entries pushed out by the size or entry bound. */
  evictions: number;
  /** Entries taken by the shrinker (reclaim, kswapd). */
  shrunk: number;
  /** Pages the shrinker freed. */
  shrunkPages: number;
}

/** A pinned entry: `buffers` are views of its pages (the last one trimmed), valid until release(). */
export interface CacheRef {
  readonly size: number;
  readonly buffers: readonly Buffer[];
  release(): void;
}

class Entry {
  refs = 0;
  live = true;
  constructor(
    readonly pages: Page[],
    readonly size: number,
  ) {}
}

/**
 * Keys are any value but null and undefined (K extends {}), compared as a
 * Map compares them. A nullish key is a caller's bug (a missing parameter),
 * which a Map would store silently under one shared slot.
 */
function checkKey(key: unknown): void {
  if (key === undefined || key === null) throw new InvalidArgTypeError(`key must not be ${String(key)}`);
}

/** The largest entry bound handed to lru-cache: its tables for 2^24 entries take about 540 MiB. */
const MAX_ENTRIES = 2 ** 24;

export const DEFAULT_CACHE_GFP = GFP.KERNEL | GFP.NORETRY | GFP.NOWARN;

export class PoolCache<K extends {} = string> {
  readonly #pool: Pool;
  readonly #lru: LRUCache<K, Entry>;
  readonly #gfp: number;
  readonly #unregister: () => void;
  /** Pages of the entries in the LRU (lru-cache counts an empty value as 1). */
  #livePages = 0;
  #pinnedEvicted = 0;
  #closed = false;
  readonly #c = { hits: 0, misses: 0, sets: 0, setFailures: 0, evictions: 0, shrunk: 0, shrunkPages: 0 };

  constructor(pool: Pool, options: PoolCacheOptions) {
    validateOptions(options, 'PoolCache options', ['maxBytes', 'maxEntries', 'gfp', 'name', 'seeks', 'batch'] satisfies (keyof PoolCacheOptions)[]);
    const maxPages = Math.floor(parseSize(options.maxBytes, 'maxBytes') / PAGE_SIZE);
    if (maxPages < 1) throw new OutOfRangeError(`maxBytes must be at least one page (${PAGE_SIZE} bytes)`);
    const { maxEntries, name = 'pool-cache', seeks, batch = 32 } = options;
    if (maxEntries !== undefined && (!Number.isInteger(maxEntries) || maxEntries < 1)) {
      throw new OutOfRangeError(`maxEntries must be a positive integer; received ${String(maxEntries)}`);
    }
    const gfp = options.gfp ?? DEFAULT_CACHE_GFP;
    validateGfp(gfp);
    this.#pool = pool;
    this.#gfp = gfp;
    // lru-cache preallocates its tables for `max` entries (2^31 of them
    // take the process down with a V8 out-of-memory). Every entry counts
    // at least one page against maxSize, so a bound at or above maxPages
    // never binds and is not passed on; one below it must be small enough
    // to preallocate.
    const entryBound = maxEntries !== undefined && maxEntries < maxPages ? maxEntries : undefined;
    if (entryBound !== undefined && entryBound > MAX_ENTRIES) {
      throw new OutOfRangeError(`maxEntries must be at most ${MAX_ENTRIES} (lru-cache preallocates for it) unless maxBytes bounds the entries first; received ${entryBound}`);
    }
    this.#lru = new LRUCache<K, Entry>({
      maxSize: maxPages,
      ...(entryBound !== undefined ? { max: entryBound } : {}),
      sizeCalculation: (e) => Math.max(1, e.pages.length),
      dispose: (e, _k, reason) => {
        if (reason === 'evict') this.#c.evictions++;
        this.#drop(e);
      },
    });
    this.#unregister = pool.registerShrinker({
      name,
      needs: 'none',
      batch,
      ...(seeks !== undefined ? { seeks } : {}),
      count: () => this.#livePages,
      scan: (n) => this.#shrink(n),
    });
  }

  /** Entries in the cache. */
  get size(): number {
    return this.#lru.size;
  }

  /**
   * Copies `value` into pool pages and caches it under `key`, replacing any
   * entry there. `value` may be given in pieces (e.g. a PoolBody's
   * buffers()), which are stored as one value. Returns false, caching
   * nothing, when the pages cannot be had with the cache's GFP mask or the
   * value is larger than the cache.
   */
  set(key: K, value: Uint8Array | string | readonly Uint8Array[]): boolean {
    this.#open();
    checkKey(key);
    const parts = typeof value === 'string' ? [Buffer.from(value)] : value instanceof Uint8Array ? [value] : value;
    if (!Array.isArray(parts) || !parts.every((p) => p instanceof Uint8Array)) {
      throw new InvalidArgTypeError('value must be a Uint8Array, a string or an array of Uint8Arrays');
    }
    let size = 0;
    for (const p of parts) size += p.length;
    this.#c.sets++;
    // The old value goes first, whatever happens next: after a failed set()
    // the key has no value rather than a stale one. (Its pages are also the
    // ones most likely to be needed for the new value.)
    this.#lru.delete(key);
    const n = Math.ceil(size / PAGE_SIZE);
    if (Math.max(1, n) > this.#lru.maxSize) {
      this.#c.setFailures++;
      return false;
    }
    const pages: Page[] = [];
    try {
      for (let i = 0; i < n; i++) pages.push(this.#pool.alloc(this.#gfp));
    } catch (err) {
      for (const p of pages) this.#pool.free(p);
      // Out of memory, or (on the main thread) it would have had to wait.
      if (err instanceof AllocError || err instanceof WouldBlockError) {
        this.#c.setFailures++;
        return false;
      }
      throw err;
    }
    let at = 0;
    for (const part of parts) at = copyIntoPages(pages, at, part);
    this.#livePages += n;
    this.#lru.set(key, new Entry(pages, size));
    return true;
  }

  /** A copy of the value (a fresh Buffer), or undefined; a hit makes the entry the most recent. */
  get(key: K): Buffer | undefined {
    const e = this.#lookup(key);
    if (e === undefined) return undefined;
    return Buffer.concat(pageViews(e.pages, e.size), e.size);
  }

  /**
   * Pins the entry and returns views of its pages (no copy), or undefined.
   * The views stay valid — and their pages allocated — until release(),
   * even if the entry is evicted, replaced or deleted meanwhile.
   */
  acquire(key: K): CacheRef | undefined {
    const e = this.#lookup(key);
    if (e === undefined) return undefined;
    e.refs++;
    const buffers = pageViews(e.pages, e.size);
    let released = false;
    return {
      size: e.size,
      buffers,
      release: () => {
        if (released) return;
        released = true;
        e.refs--;
        if (!e.live && e.refs === 0) this.#freePages(e, true);
      },
    };
  }

  has(key: K): boolean {
    this.#open();
    checkKey(key);
    return this.#lru.has(key);
  }

  delete(key: K): boolean {
    this.#open();
    checkKey(key);
    return this.#lru.delete(key);
  }

  /** Drops every entry (pinned ones keep their pages until released). */
  clear(): void {
    this.#lru.clear();
  }

  stats(): PoolCacheStats {
    return { entries: this.#lru.size, pages: this.#livePages + this.#pinnedEvicted, pinnedEvictedPages: this.#pinnedEvicted, ...this.#c };
  }

  /** Clears the cache and unregisters its shrinker. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unregister();
    this.#lru.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** A counted lookup that makes the entry the most recent. */
  #lookup(key: K): Entry | undefined {
    this.#open();
    checkKey(key);
    const e = this.#lru.get(key);
    if (e === undefined) this.#c.misses++;
    else this.#c.hits++;
    return e;
  }

  /**
   * Shrinker scan: evicts from the cold end until `n` pages were freed.
   * Pinned entries are passed over: evicting one frees nothing now, and
   * would only cost the next reader a miss.
   */
  #shrink(n: number): number {
    const victims: K[] = [];
    let pages = 0;
    for (const k of this.#lru.rkeys()) {
      if (pages >= n) break;
      const e = this.#lru.peek(k)!;
      if (e.refs > 0) continue;
      victims.push(k);
      pages += e.pages.length;
    }
    const before = this.#freedCount;
    for (const k of victims) this.#lru.delete(k);
    const freed = this.#freedCount - before;
    this.#c.shrunk += victims.length;
    this.#c.shrunkPages += freed;
    return freed;
  }

  /** Pages this cache has freed, ever (scan's progress measure). */
  #freedCount = 0;

  /** The entry left the cache: free its pages now, or at the last release. */
  #drop(e: Entry): void {
    e.live = false;
    this.#livePages -= e.pages.length;
    if (e.refs === 0) this.#freePages(e, false);
    else this.#pinnedEvicted += e.pages.length;
  }

  #freePages(e: Entry, wasPinned: boolean): void {
    if (wasPinned) this.#pinnedEvicted -= e.pages.length;
    for (const p of e.pages) this.#pool.free(p);
    this.#freedCount += e.pages.length;
  }

  #open(): void {
    if (this.#closed) throw new PoolClosedError('this PoolCache is closed');
  }
}
