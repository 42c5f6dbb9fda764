/**
 * Load shedding for node:http: read a request's body into pool pages, or
 * answer 503 (with Retry-After) or 413 for it. See shed.ts for the checks
 * and policies.
 *
 *   const shed = new LoadShedder(pool, { policy: 'reserve', budgetMs: 50 });
 *   http.createServer(async (req, res) => {
 *     const body = await readPoolBody(shed, req, res);
 *     if (body === null) return; // refused (answered) or the client went away
 *     try { ... } finally { body.free(); }
 *   });
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type LoadShedder, type PoolBody, ShedError } from './shed.js';

/** The declared body length, or undefined for a chunked (or absent) one. */
export function contentLength(req: IncomingMessage): number | undefined {
  const h = req.headers['content-length'];
  if (h === undefined || req.headers['transfer-encoding'] !== undefined) return undefined;
  const n = Number(h);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** Answers a refusal: 413 closes the connection (the body is not read), 503 says when to come back. */
export function sendShed(res: ServerResponse, err: ShedError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(err.status, { 'content-type': 'text/plain; charset=utf-8', ...err.headers });
  res.end(`${err.status === 413 ? 'Payload Too Large' : 'Service Unavailable'}: ${err.message}\n`);
}

/**
 * The request's body in pool pages, or null when the request was refused
 * (and answered) or its client went away (and the socket is closed). The
 * caller frees the body.
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
      sendShed(res, err);
      return null;
    }
    // The request stream failed (client abort, parse error): nothing to answer.
    if (req.destroyed || req.errored) {
      res.destroy();
      return null;
    }
    throw err;
  }
}
