/**
 * PoolCache: a size-bounded key → bytes cache whose values live in pool
 * pages and which gives them back under pressure.
 *
 * Recency is lru-cache's (its maxSize counts pages here); what this file
 * adds is the memory: a value lives in order-0 pages (order 0 so that a
 * fragmented pool can still cache, as the kernel's page cache does), and
 * the cache registers a shrinker (needs 'none': freeing a clean copy needs
 * neither I/O nor the filesystem), so direct reclaim and kswapd evict its
 * coldest entries before anyone is refused memory.
 *
 * Values come in two ways: set() copies bytes into new pages; adopt() takes
 * a request body's pages as they are (ownership moves, bytes don't: see
 * body.ts for who owns a page when). Each entry may carry a small JSON
 * `meta` (a digest, a content type), kept beside its pages.
 *
 * Readers either copy (get) or pin (acquire): a pinned entry that is
 * evicted, replaced or deleted leaves the cache at once but keeps its pages
 * until the last release(), so a response still being written is never
 * served someone else's bytes. Counting rule: count() reports every page
 * the cache holds; scan() returns only the pages actually freed (a pinned
 * entry's pages are freed later, by release()). Every page the cache holds
 * is in exactly one entry:
 *
 *   stats().pages == Σ live entries' pages + pinnedEvictedPages
 *
 * Like pages, a PoolCache belongs to the thread that made it.
 */
import { LRUCache } from 'lru-cache';
import { AllocError, BadPageError, InvalidArgTypeError, OutOfRangeError, PoolClosedError, WouldBlockError } from '../errors.js';
import { validateOptions } from '../validators.js';
import { PoolBody, takePages } from './body.js';
import { type CacheMeta, snapshotMeta } from './meta.js';
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
  /** Of those, adopt() calls: entries made of a body's own pages, no copy. */
  adopted: number;
  /** set() and adopt() calls that cached nothing (no pages, or larger than the cache). */
  setFailures: number;
  /** Entries pushed out by the size or entry bound. */
  evictions: number;
  /** Entries taken by the shrinker (reclaim, kswapd). */
  shrunk: number;
  /** Pages the shrinker freed. */
  shrunkPages: number;
}

/**
 * A pinned entry: `buffers` are views of its pages (adjacent pages in one
 * view, the last one trimmed), valid until release(); `meta` is what was
 * stored with it. release() is idempotent.
 */
export interface CacheRef<M extends CacheMeta = CacheMeta> {
  readonly size: number;
  readonly buffers: readonly Buffer[];
  readonly meta: M | undefined;
  readonly released: boolean;
  release(): void;
}

export type { CacheMeta } from './meta.js';

class Entry {
  refs = 0;
  live = true;
  /** The views readers get, made once (a frozen array: every pin shares it). */
  #views: readonly Buffer[] | null = null;
  constructor(
    readonly pages: Page[],
    readonly size: number,
    readonly meta: CacheMeta | undefined,
  ) {}

  get views(): readonly Buffer[] {
    return (this.#views ??= Object.freeze(pageViews(this.pages, this.size)));
  }
}

/** A pin on an entry; the last release of an entry that left the cache frees its pages. */
class Pin implements CacheRef {
  #entry: Entry | null;
  readonly #unpin: (e: Entry) => void;
  readonly size: number;
  readonly buffers: readonly Buffer[];
  readonly meta: CacheMeta | undefined;

  constructor(e: Entry, unpin: (e: Entry) => void) {
    e.refs++;
    this.#entry = e;
    this.#unpin = unpin;
    this.size = e.size;
    this.buffers = e.views;
    this.meta = e.meta;
  }

  get released(): boolean {
    return this.#entry === null;
  }

  release(): void {
    const e = this.#entry;
    if (e === null) return;
    this.#entry = null;
    this.#unpin(e);
  }
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

export class PoolCache<K extends {} = string, M extends CacheMeta = CacheMeta> {
  readonly #pool: Pool;
  readonly #lru: LRUCache<K, Entry>;
  readonly #gfp: number;
  readonly #unregister: () => void;
  /** Pages of the entries in the LRU (lru-cache counts an empty value as 1). */
  #livePages = 0;
  #pinnedEvicted = 0;
  #closed = false;
  readonly #c = { hits: 0, misses: 0, sets: 0, adopted: 0, setFailures: 0, evictions: 0, shrunk: 0, shrunkPages: 0 };
  readonly #unpin = (e: Entry): void => {
    e.refs--;
    if (!e.live && e.refs === 0) this.#freePages(e, true);
  };

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
   * value is larger than the cache. A request body's pages need no copy:
   * adopt() them instead.
   */
  set(key: K, value: Uint8Array | string | readonly Uint8Array[], meta?: M): boolean {
    this.#open();
    checkKey(key);
    const parts = typeof value === 'string' ? [Buffer.from(value)] : value instanceof Uint8Array ? [value] : value;
    if (!Array.isArray(parts) || !parts.every((p) => p instanceof Uint8Array)) {
      throw new InvalidArgTypeError(
        value instanceof PoolBody
          ? 'value is a PoolBody: cache.adopt(key, body) takes its pages without a copy'
          : 'value must be a Uint8Array, a string or an array of Uint8Arrays',
      );
    }
    const m = snapshotMeta(meta);
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
    this.#lru.set(key, new Entry(pages, size, m));
    return true;
  }

  /**
   * Caches `body`'s pages under `key` as they are — no copy — with `meta`
   * beside them, replacing any entry there. From then on the pages are the
   * cache's: body.state is 'adopted' and body.free() does nothing. Returns
   * false when the body is larger than the cache: nothing is cached (the
   * key has no value), and the body is still the caller's to free. Throws
   * BadPageError for a body already freed or adopted, or of another pool.
   */
  adopt(key: K, body: PoolBody, meta?: M): boolean {
    this.#open();
    checkKey(key);
    if (!(body instanceof PoolBody)) throw new InvalidArgTypeError('body must be a PoolBody (from a LoadShedder); set() copies other values');
    if (body.state !== 'open') throw new BadPageError(`cannot adopt a body that was ${body.state === 'adopted' ? 'adopted already' : 'freed'}`);
    const m = snapshotMeta(meta);
    this.#c.sets++;
    this.#c.adopted++;
    // As in set(): the old value goes first, whatever happens next.
    this.#lru.delete(key);
    if (Math.max(1, body.pages.length) > this.#lru.maxSize) {
      this.#c.setFailures++;
      return false;
    }
    // The move: the body's ledger stops counting the pages and the cache
    // starts, in one synchronous step (body.ts).
    const { pages, size } = takePages(body, this.#pool);
    this.#livePages += pages.length;
    this.#lru.set(key, new Entry(pages, size, m));
    return true;
  }

  /** A copy of the value (a fresh Buffer), or undefined; a hit makes the entry the most recent. */
  get(key: K): Buffer | undefined {
    const e = this.#lookup(key);
    if (e === undefined) return undefined;
    return Buffer.concat(e.views, e.size);
  }

  /** get() with the entry's meta: { value (a copy), meta }, or undefined. */
  getEntry(key: K): { value: Buffer; meta: M | undefined } | undefined {
    const e = this.#lookup(key);
    if (e === undefined) return undefined;
    return { value: Buffer.concat(e.views, e.size), meta: e.meta as M | undefined };
  }

  /**
   * Pins the entry and returns views of its pages (no copy) and its meta,
   * or undefined. The views stay valid — and their pages allocated — until
   * release(), even if the entry is evicted, replaced or deleted meanwhile.
   * sendPages(res, ref) / reply.sendPool(ref) send them and release.
   */
  acquire(key: K): CacheRef<M> | undefined {
    const e = this.#lookup(key);
    if (e === undefined) return undefined;
    return new Pin(e, this.#unpin) as CacheRef as CacheRef<M>;
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
    // A pin released after the pool closed in this thread (a response that
    // finished late): the pages went with the pool.
    if (!this.#pool.closed && e.pages.length > 0) this.#pool.freeBulk(e.pages);
    this.#freedCount += e.pages.length;
  }

  #open(): void {
    if (this.#closed) throw new PoolClosedError('this PoolCache is closed');
  }
}
