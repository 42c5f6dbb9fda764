/**
 * Load shedding and page-backed responses for node:http: read a request's
 * body into pool pages (or answer 503 with Retry-After, or 413, for it),
 * and send pool pages as a response without copying them. See shed.ts for
 * the admission rules, refusal.ts for how a refusal reaches the client,
 * send.ts for how sent pages come back.
 *
 *   const shed = new LoadShedder(pool, { budgetMs: 50 });
 *   http.createServer(async (req, res) => {
 *     const body = await readPoolBody(shed, req, res);
 *     if (body === null) return;                          // refused (answered) or the client went away
 *     if (!cache.adopt(key, body, { sha })) { body.free(); return shed.refuse(res, 'no-memory'); }
 *     ...
 *     sendPages(res, cache.acquire(key));                 // released when the response ends
 *   });
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { answerRefusal, ShedError } from './refusal.js';
import type { LoadShedder, PoolBody } from './shed.js';

export { sendPages, type PageSource, type SendPagesOptions } from './send.js';

/** The declared body length, or undefined for a chunked (or absent) one. */
export function contentLength(req: IncomingMessage): number | undefined {
  const h = req.headers['content-length'];
  if (h === undefined || req.headers['transfer-encoding'] !== undefined) return undefined;
  const n = Number(h);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** Does the request bring a body (a declared non-zero length, or a chunked one)? */
export function hasBody(req: IncomingMessage): boolean {
  const h = req.headers;
  return h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0');
}

/** How long sendShed lets a refused client go on sending (LoadShedder's lingerMs default). */
const LINGER_MS = 5000;

/**
 * Answers a refusal: 413, or 503 with Retry-After, on a connection that
 * stays open while the unread body is drained (refusal.ts). Prefer
 * `shedder.refuse(res, err)`, which also counts.
 */
export function sendShed(res: ServerResponse, err: ShedError): void {
  answerRefusal(res, err, LINGER_MS);
}

/**
 * The request's body in pool pages, or null when the request was refused
 * (and answered) or its client went away (and the socket is closed). A
 * declared length is admitted or refused before the body is read. The
 * caller owns the body: free it, adopt it into a cache, or sendPages it.
 */
export async function readPoolBody(shedder: LoadShedder, req: IncomingMessage, res: ServerResponse): Promise<PoolBody | null> {
  try {
    const body = await shedder.admit(contentLength(req), req);
    // The client may have gone while the pages were being found.
    if (res.destroyed) {
      body.free();
      return null;
    }
    return body;
  } catch (err) {
    if (err instanceof ShedError) {
      shedder.refuse(res, err);
      return null;
    }
    // The request stream failed (client abort, parse error): nothing to answer.
    if (req.destroyed || req.errored || res.destroyed) {
      res.destroy();
      return null;
    }
    throw err;
  }
}
