/**
 * Refusals: the answer a shed request gets (413, or 503 with Retry-After),
 * and how its connection is kept so that the client hears it.
 *
 * A refusal never says `Connection: close` of its own accord. Closing a
 * connection whose client is still sending makes the kernel reset it, and
 * a reset throws away whatever the client had not read yet — the answer
 * included: the client sees EPIPE or ECONNRESET instead of its 503
 * (nodejs/node#9085; techniques.md §4). So what is left of the body is
 * read and thrown away (node:http's own _dump) on a connection that stays
 * open — or, when the client itself asked to close it, that is closed in
 * stages (drainAfter) — for at most `lingerMs` after the answer went out;
 * a client still sending then is cut off: nginx's lingering_time. Nothing
 * of the discarded body is kept: the cost is bounded by time, never by
 * memory.
 *
 * Answers go through either a node:http ServerResponse or a Fastify reply
 * (anything with raw, request.raw, code, headers and send); this module
 * imports neither framework.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export type ShedReason = 'too-large' | 'psi-some' | 'psi-full' | 'watermark' | 'budget' | 'no-memory';

export const SHED_REASONS: readonly ShedReason[] = ['too-large', 'psi-some', 'psi-full', 'watermark', 'budget', 'no-memory'];

/** A refused request: `status` is what to answer (413 or 503). */
export class ShedError extends Error {
  readonly code = 'ERR_SHED' as const;
  readonly reason: ShedReason;
  readonly status: 413 | 503;
  readonly retryAfterSeconds: number;
  constructor(reason: ShedReason, message: string, retryAfterSeconds: number) {
    super(message);
    this.name = 'ShedError';
    this.reason = reason;
    this.status = reason === 'too-large' ? 413 : 503;
    this.retryAfterSeconds = retryAfterSeconds;
  }

  /** What web frameworks read (Fastify's default error handler uses both). */
  get statusCode(): 413 | 503 {
    return this.status;
  }

  /** Retry-After on a 503; nothing on a 413 (and never Connection: close, see above). */
  get headers(): Record<string, string> {
    return this.status === 503 ? { 'retry-after': String(this.retryAfterSeconds) } : {};
  }
}

/** The part of a Fastify reply a refusal is answered through. */
export interface ReplyLike {
  readonly raw: ServerResponse;
  readonly request: { readonly raw: IncomingMessage };
  readonly sent: boolean;
  code(statusCode: number): ReplyLike;
  headers(values: Record<string, string>): ReplyLike;
  send(payload?: unknown): ReplyLike;
}

/** A node:http response, or a Fastify reply. */
export type RefusalTarget = ServerResponse | ReplyLike;

function isReply(t: RefusalTarget): t is ReplyLike {
  return typeof (t as ReplyLike).send === 'function' && typeof (t as ReplyLike).raw === 'object';
}

const STATUS_TEXT = { 413: 'Payload Too Large', 503: 'Service Unavailable' } as const;

/**
 * Answers `err` on `target`. The response must not have started; if it
 * has, the connection is destroyed (there is no way left to refuse).
 * `onCutOff` runs when a client was still sending at the end of lingerMs.
 */
export function answerRefusal(target: RefusalTarget, err: ShedError, lingerMs: number, onCutOff?: () => void): void {
  const res = isReply(target) ? target.raw : target;
  const req = isReply(target) ? target.request.raw : res.req;
  if (res.headersSent || (isReply(target) && target.sent)) {
    res.destroy();
    return;
  }
  if (req !== undefined) drainAfter(req, res, lingerMs, onCutOff);
  const text = STATUS_TEXT[err.status];
  if (isReply(target)) {
    target.code(err.status).headers(err.headers).send({ statusCode: err.status, error: text, message: err.message });
  } else {
    res.writeHead(err.status, { 'content-type': 'text/plain; charset=utf-8', ...err.headers });
    res.end(`${text}: ${err.message}\n`);
  }
}

/**
 * Reads and discards what is left of `req`'s body, and closes the
 * connection only when that is done or `lingerMs` after `res` went out.
 * A body never touched is node:http's to discard (resOnFinish dumps it);
 * one a reader paused half-way is resumed here.
 *
 * Two endings. A keep-alive answer leaves the connection open: the body
 * drains and the connection serves the next request; a client still
 * sending lingerMs after its answer is cut off. An answer that is the
 * connection's last (the client sent Connection: close) is ended by
 * node:http with socket.destroySoon(): a FIN, then destroy() as soon as
 * the FIN is out — a reset, with the client's unread body still arriving.
 * For this socket, destroySoon half-closes instead and the body goes on
 * draining until the client closes its side (the socket then closes
 * cleanly) or lingerMs pass: the staged close of RFC 9112 §9.6.
 */
export function drainAfter(req: IncomingMessage, res: ServerResponse, lingerMs: number, onCutOff?: () => void): void {
  if (req.complete || req.destroyed) return;
  const socket = req.socket;
  req.resume();
  let timer: NodeJS.Timeout | undefined;
  let closing = false;
  const cutOff = (): void => {
    if (socket.destroyed) return;
    if (!req.complete) onCutOff?.();
    socket.destroy();
  };
  const arm = (): void => {
    if (timer !== undefined) return;
    timer = setTimeout(cutOff, lingerMs);
    timer.unref();
  };
  const lingeringClose = (): void => {
    closing = true;
    socket.end();
    arm();
  };
  // The body drained (or the connection went): nothing here holds on to
  // the request any more — a keep-alive connection serves many, and a
  // listener left on its socket per refusal would keep every one of them.
  const done = (): void => {
    req.off('end', done);
    socket.off('close', done);
    if (socket.destroySoon === lingeringClose) delete (socket as { destroySoon?: unknown }).destroySoon;
    // Closing in stages: the timer stays, in case the client never closes its side.
    if (!closing) clearTimeout(timer);
  };
  socket.destroySoon = lingeringClose;
  req.once('end', done);
  socket.once('close', done);
  res.once('finish', () => {
    if (!req.complete) arm();
  });
}
