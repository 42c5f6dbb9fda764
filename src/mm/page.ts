/**
 * A page handle: a block of 2^order pages of a pool. `bytes` is a view of
 * the pool's memory made from one of this thread's ArrayBuffers over the
 * region (one per GiB chunk: DESIGN §2, native/core/page_meta.h), so
 * making it costs a typed-array construction, not a mapping.
 *
 * A Page is valid only in the thread that allocated or adopted it, until it
 * is freed or transferred; every later use through the handle throws.
 */
import { BadPageError, DoubleFreeError, PoolClosedError } from '../errors.js';
import { PAGE_SIZE } from './size.js';

/** What a Page needs of its pool in this thread (the thread's Attachment, attachment.ts, implements it). */
export interface PageOwner {
  readonly slot: number;
  readonly closed: boolean;
  /** A view of the block's memory (bytes [pfn * PAGE_SIZE, + PAGE_SIZE << order)). */
  view(pfn: number, order: number): Uint8Array;
}

const LIVE = 0;
const FREED = 1;
const MOVED = 2;

/** A page sent to another thread: `pool.transfer(page)` there, `pool.adopt(d)` here. */
export interface PageDescriptor {
  readonly pool: number;
  readonly pfn: number;
  readonly order: number;
  readonly gen: number;
}

const TOKEN = Symbol('nofail.page');

// Accessors to Page's private fields for pool.ts, set in the static block.
export let pageGen: (p: Page) => number;
/** Checks a page may be freed or transferred by `owner`; throws the matching error. */
export let checkPage: (p: unknown, owner: PageOwner) => asserts p is Page;
export let markFreed: (p: Page) => void;
export let markLive: (p: Page) => void;
export let markMoved: (p: Page) => void;
export let makePage: (owner: PageOwner, pfn: number, order: number, gen: number, bytes?: Uint8Array) => Page;
/** The view a page already made, if any (so a per-thread cache can reuse it). */
export let pageView: (p: Page) => Uint8Array | undefined;
/**
 * The free fast path in one call: if `p` is a live page of `owner`, of
 * order `maxOrder` or below, charged to the thread's own task, marks it
 * freed and returns its generation; otherwise -1 and nothing changes (the
 * caller takes the slow path, which reports what is wrong). The caller has
 * checked that `owner` is open (Attachment.fastPathOk).
 */
export let takeForCache: (p: unknown, owner: PageOwner, maxOrder: number) => number;
/** The logical task a page is charged to (0: its thread's own task). */
export let pageTask: (p: Page) => number;
export let setPageTask: (p: Page, task: number) => void;

export class Page {
  /** Page frame number: the index of the first page in the pool. */
  readonly pfn: number;
  /** The block is 2^order pages. */
  readonly order: number;
  #owner: PageOwner;
  #gen: number;
  #state = LIVE;
  #task = 0;
  #bytes: Uint8Array | undefined;

  /** Pages come from pool.alloc(), allocBulk() and adopt(): the constructor is private (and checks a token as well). */
  private constructor(token: symbol, owner: PageOwner, pfn: number, order: number, gen: number) {
    if (token !== TOKEN) throw new TypeError('Page is not constructible; use pool.alloc()');
    this.#owner = owner;
    this.pfn = pfn;
    this.order = order;
    this.#gen = gen;
  }

  /** Size of the block in bytes (4096 << order). */
  get size(): number {
    return PAGE_SIZE << this.order;
  }

  /** The block's memory, `size` bytes. Throws once the page is freed or transferred. */
  get bytes(): Uint8Array {
    // The error is made out of line: this getter is on every caller's hot
    // path, and V8 inlines a hot path into the caller's loop only while its
    // bytecode fits the inlining budget (see Pool.alloc).
    if (this.#state !== LIVE || this.#owner.closed) throw this.#unusable();
    return (this.#bytes ??= this.#owner.view(this.pfn, this.order));
  }

  /** Why `bytes` cannot be read: the pool is closed in this thread, or the page was freed or transferred. */
  #unusable(): Error {
    if (this.#owner.closed) return new PoolClosedError('the pool of this page is closed in this thread');
    return new BadPageError(`page ${this.pfn} was ${this.#state === FREED ? 'freed' : 'transferred'}`);
  }

  get [Symbol.toStringTag](): string {
    return `Page pfn=${this.pfn} order=${this.order}${this.#state === LIVE ? '' : this.#state === FREED ? ' (freed)' : ' (transferred)'}`;
  }

  static {
    pageGen = (p) => p.#gen;
    checkPage = (p, owner): asserts p is Page => {
      if (typeof p !== 'object' || p === null || !(#state in p)) {
        throw new BadPageError('not a page handle of this pool (a forged or cloned object?)');
      }
      if (p.#owner !== owner) {
        throw owner.closed
          ? new PoolClosedError()
          : new BadPageError(`page ${p.pfn} belongs to another pool or another thread's attachment`);
      }
      if (owner.closed) throw new PoolClosedError();
      if (p.#state === FREED) throw new DoubleFreeError(`page ${p.pfn} (order ${p.order}) is already free`);
      if (p.#state === MOVED) throw new BadPageError(`page ${p.pfn} was transferred to another thread`);
    };
    markFreed = (p) => {
      p.#state = FREED;
    };
    markLive = (p) => {
      p.#state = LIVE;
    };
    markMoved = (p) => {
      p.#state = MOVED;
    };
    makePage = (owner, pfn, order, gen, bytes) => {
      const p = new Page(TOKEN, owner, pfn, order, gen);
      p.#bytes = bytes;
      return p;
    };
    pageView = (p) => p.#bytes;
    pageTask = (p) => p.#task;
    takeForCache = (p, owner, maxOrder) => {
      if (typeof p !== 'object' || p === null || !(#state in p)) return -1;
      if (p.#owner !== owner || p.#state !== LIVE || p.order > maxOrder || p.#task !== 0) return -1;
      p.#state = FREED;
      return p.#gen;
    };
    setPageTask = (p, task) => {
      p.#task = task;
    };
  }
}
