/**
 * A request body in pool pages (PoolBody), who owns its pages, and how a
 * stream is read into them.
 *
 * Ownership. A body's pages have exactly one owner at every moment:
 *
 *   'open'     the request: it reads into them and frees them when done
 *              (the Fastify plugin frees them when the response closes);
 *   'adopted'  a PoolCache entry, which took them without a copy
 *              (cache.adopt); free() is then a no-op, so the request's
 *              cleanup cannot free pages the cache now serves;
 *   'freed'    the pool.
 *
 * The move is synchronous and in one thread (a Page belongs to its
 * thread), so there is no moment at which two owners, or none, count a
 * page. While a body is open its pages are counted in its ledger (the
 * LoadShedder's bodyPages); adopt moves them from that count to the
 * cache's in the same call:
 *
 *   pool.allocatedPages == ledger.pages + cache pages + whatever else callers hold
 *
 * Reading. readInto() takes a Readable's chunks as they come ('data' in
 * flowing mode: each chunk is handed over as the socket produced it, and
 * copied once, page by page, with memcpy). A body of declared length has
 * all its pages before the first byte is read; one of unknown length grows
 * as chunks arrive, the stream paused while the pages are found.
 */
import { Readable } from 'node:stream';
import { BadPageError } from '../errors.js';
import { type Page, PAGE_SIZE, type Pool } from '../mm/index.js';
import { copyIntoPages, pageViews } from './span.js';

export type BodyState = 'open' | 'adopted' | 'freed';

/** Where the pages of open bodies are counted (a LoadShedder's bodyPages). */
export interface BodyLedger {
  pages: number;
}

/**
 * @internal For PoolCache.adopt: moves the body's pages out (the body is
 * 'adopted' from then on and its ledger no longer counts them). Throws
 * BadPageError if the body is not open or belongs to another pool.
 */
export let takePages: (body: PoolBody, pool: Pool) => { pages: Page[]; size: number };

/**
 * A request body in pool pages. Free it once the request is done with it
 * (free() is idempotent, so a `finally` and an error path may both call
 * it), or hand its pages to a cache with `cache.adopt(key, body)`.
 */
export class PoolBody {
  readonly #pool: Pool;
  readonly #ledger: BodyLedger | null;
  /** The pages, in order; emptied when the body is freed or adopted. */
  readonly pages: Page[];
  #size = 0;
  #state: BodyState = 'open';
  #views: Buffer[] | null = null;

  /** @internal Bodies come from a LoadShedder (admit, claim): an empty one, counted in `ledger`. */
  static open(pool: Pool, ledger: BodyLedger | null = null): PoolBody {
    return new PoolBody(pool, [], ledger);
  }

  private constructor(pool: Pool, pages: Page[], ledger: BodyLedger | null) {
    this.#pool = pool;
    this.pages = pages;
    this.#ledger = ledger;
    if (ledger !== null) ledger.pages += pages.length;
  }

  /** Bytes in the body. */
  get size(): number {
    return this.#size;
  }

  /** Who owns the pages now: the request ('open'), a cache ('adopted'), or the pool ('freed'). */
  get state(): BodyState {
    return this.#state;
  }

  /** True once the request no longer owns the pages (freed, or adopted by a cache). */
  get freed(): boolean {
    return this.#state !== 'open';
  }

  /** @internal More pages at the end (a body of unknown length growing). */
  addPages(pages: readonly Page[]): void {
    this.#open('grow');
    for (const p of pages) this.pages.push(p);
    if (this.#ledger !== null) this.#ledger.pages += pages.length;
  }

  /** @internal Appends bytes; the pages must already be there. */
  append(chunk: Uint8Array): void {
    this.#size = copyIntoPages(this.pages, this.#size, chunk);
    this.#views = null;
  }

  /** Views of the body's pages (no copy; adjacent pages share one), valid while the body is open. */
  buffers(): Buffer[] {
    this.#open('read');
    return (this.#views ??= pageViews(this.pages, this.#size)).slice();
  }

  /** The body as one fresh Buffer (a copy). */
  toBuffer(): Buffer {
    return Buffer.concat(this.buffers(), this.#size);
  }

  /** Gives the pages back to the pool; a no-op once freed or adopted. */
  free(): void {
    if (this.#state !== 'open') return;
    this.#state = 'freed';
    this.#views = null;
    const pages = this.pages.splice(0);
    if (this.#ledger !== null) this.#ledger.pages -= pages.length;
    // A closed pool took its pages with it (the mapping is gone): nothing to
    // give back. Page by page: outside reclaim each free is the page cache's
    // fast path, no native call (measured cheaper than one freeBulk here).
    if (this.#pool.closed) return;
    for (const p of pages) this.#pool.free(p);
  }

  [Symbol.dispose](): void {
    this.free();
  }

  #open(what: string): void {
    if (this.#state !== 'open') throw new BadPageError(`cannot ${what} a body that was ${this.#state === 'adopted' ? 'adopted by a cache' : 'freed'}`);
  }

  static {
    takePages = (body, pool) => {
      body.#open('adopt');
      if (body.#pool !== pool) throw new BadPageError('the body belongs to another pool (or another thread’s attachment of it)');
      body.#state = 'adopted';
      body.#views = null;
      const pages = body.pages.splice(0);
      if (body.#ledger !== null) body.#ledger.pages -= pages.length;
      return { pages, size: body.#size };
    };
  }
}

/** Thrown by readInto when the source ends before its declared length or closes before its end. */
export class IncompleteBodyError extends Error {
  readonly code = 'ERR_INCOMPLETE_BODY' as const;
  constructor(message: string) {
    super(message);
    this.name = 'IncompleteBodyError';
  }
}

/**
 * Reads `source` to its end into `body`. `limit` bounds the body's bytes
 * (`onLimit()` makes the error when a chunk goes past it). When a chunk
 * needs pages the body does not have, `grow(n)` must add them (the stream
 * is paused meanwhile); null: the body has all it may get. On failure the
 * source is paused and left to the caller (to drain, or to see destroyed),
 * and the body is not freed here: the caller owns it.
 */
export function readInto(
  body: PoolBody,
  source: Readable | AsyncIterable<Uint8Array>,
  limit: number,
  onLimit: () => Error,
  grow: ((pages: number) => Promise<void>) | null,
): Promise<void> {
  const stream = source instanceof Readable ? source : Readable.from(source, { objectMode: true });
  return new Promise<void>((resolve, reject) => {
    let growing = false;
    let ended = false;
    let settled = false;
    const settle = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onClose);
      if (err === null) {
        resolve();
      } else {
        // No more 'data' for a body that is no longer read; whoever
        // answers the request decides whether to drain the rest.
        stream.pause();
        reject(err);
      }
    };
    // The body's owner may free it while it is being read (the Fastify
    // plugin does, when the response closes first): the read ends there.
    const gone = (): Error => new IncompleteBodyError('the body was freed while it was being read (its response closed)');
    const onData = (chunk: Uint8Array): void => {
      if (body.freed) return settle(gone());
      const end = body.size + chunk.length;
      if (end > limit) return settle(onLimit());
      const need = Math.ceil(end / PAGE_SIZE) - body.pages.length;
      if (need <= 0) {
        body.append(chunk);
        return;
      }
      if (grow === null) return settle(onLimit());
      stream.pause();
      growing = true;
      grow(need).then(
        () => {
          growing = false;
          if (settled) return;
          if (body.freed) return settle(gone());
          body.append(chunk);
          if (ended) settle(null);
          else stream.resume();
        },
        (err: Error) => settle(err),
      );
    };
    // A paused stream may still end (its last chunk was handed to onData
    // and the end of input came while its pages were being found).
    const onEnd = (): void => {
      ended = true;
      if (!growing) settle(null);
    };
    const onError = (err: Error): void => settle(err);
    const onClose = (): void => {
      if (!ended) settle(new IncompleteBodyError('the request closed before its body ended (the client went away)'));
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onClose);
    if (stream.readableEnded) onEnd();
    else if (stream.destroyed) onClose();
  });
}
