/**
 * Responses straight from pool pages: sendPages(res, src) writes a pinned
 * cache entry (CacheRef) or a request body (PoolBody) as the response body
 * without copying it, and gives the pages back exactly once, whichever way
 * the response ends:
 *
 *   finish   ServerResponse 'finish' comes from the last write's callback:
 *            every byte was handed to the kernel — or, when the connection
 *            died or the response was destroyed with an error, the socket's
 *            handle was closed first (destroy() closes it synchronously, so
 *            libuv writes nothing more from the views) and the cancelled
 *            writes completed. Node 20 emits it in each of those endings
 *            (test/service/87-send.test.ts has one of each);
 *   close    comes after finish, and is the fallback should an ending ever
 *            skip it: the handle is closed by then in every case;
 *   at once  the response was already destroyed, or writing the head threw.
 *
 * From the call on the pages are the response's: the caller must not
 * release the ref (or free the body) itself. The views go out in one
 * corked batch — one writev — after the head, with Content-Length set.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { InvalidArgTypeError } from '../errors.js';
import { PoolBody } from './body.js';
import type { CacheRef } from './poolcache.js';

/** What sendPages sends: a pinned cache entry, or a request body. */
export type PageSource = CacheRef | PoolBody;

export interface SendPagesOptions {
  /** Default 200. */
  status?: number;
  /** Default 'application/octet-stream'. */
  contentType?: string;
  /** More response headers (Content-Length is set from the source). */
  headers?: OutgoingHttpHeaders;
}

/** The source's views, size and release, the same for both kinds; throws InvalidArgTypeError for anything else. */
export function pageSource(src: PageSource): { views: readonly Uint8Array[]; size: number; release: () => void } {
  if (src instanceof PoolBody) return { views: src.buffers(), size: src.size, release: () => src.free() };
  const ref = src as Partial<CacheRef> | null;
  if (ref === null || typeof ref !== 'object' || typeof ref.release !== 'function' || !Array.isArray(ref.buffers) || typeof ref.size !== 'number') {
    throw new InvalidArgTypeError('src must be a CacheRef (cache.acquire()) or a PoolBody');
  }
  if (ref.released === true) throw new InvalidArgTypeError('src is a CacheRef that was already released');
  return { views: ref.buffers, size: ref.size, release: () => ref.release!() };
}

/**
 * Sends `src` as the body of `res` (status, Content-Type and headers from
 * `options`), no copy, and releases it once the response is finished or
 * dead. The response must not have been started.
 */
export function sendPages(res: ServerResponse, src: PageSource, options: SendPagesOptions = {}): void {
  const { views, size, release } = pageSource(src);
  let released = false;
  const done = (): void => {
    if (released) return;
    released = true;
    res.off('finish', done);
    res.off('close', done);
    release();
  };
  if (res.destroyed) return done();
  res.once('finish', done);
  res.once('close', done);
  try {
    res.writeHead(options.status ?? 200, {
      ...options.headers,
      'content-type': options.contentType ?? 'application/octet-stream',
      'content-length': size,
    });
  } catch (err) {
    done();
    throw err;
  }
  // Corked: the head and every view leave in one writev. end() uncorks.
  res.cork();
  for (const v of views) res.write(v);
  res.end();
}
