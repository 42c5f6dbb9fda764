/**
 * A Fastify plugin in the spirit of @fastify/under-pressure, for a pool:
 *
 *   await app.register(nofailFastify, { pool, budgetMs: 50 });
 *   app.put('/kv/:key', { schema: { body: poolBody } }, async (req, reply) => {
 *     // req.body: PoolBody (typed by the schema marker, checked at run time)
 *     if (!cache.adopt(req.params.key, req.body, { sha })) return app.nofail.shedder.refuse(reply, 'no-memory');
 *     return reply.code(201).send();
 *   });
 *   app.get('/kv/:key', (req, reply) => reply.sendPool(cache.acquire(key)!, { contentType }));
 *
 * - Bodies of the given content types (default application/octet-stream)
 *   go into pool pages. A declared length is admitted or refused in
 *   onRequest, before a byte is read: its pages are claimed whole there
 *   (shed.ts: free memory, then reclaimed caches, then — without pressure —
 *   a wait within budgetMs); a chunked body is read page by page. A body
 *   that cannot be had is a 503 with Retry-After, one over maxBodyBytes a
 *   413; either is answered on a connection that stays open while the rest
 *   of the upload is drained (refusal.ts), so the client reads its answer.
 * - `request.body` is the PoolBody. The plugin frees it when the response
 *   closes (sent, or its connection gone) unless a cache adopted it.
 * - Requests without a body allocate nothing and are not shed, unless the
 *   route says `config: { nofail: { shedWithoutBody: true } }` (then they
 *   get 503 while the pool is under pressure). `config: { nofail: false }`
 *   turns shedding off for a route (its bodies are still pool pages).
 * - `reply.sendPool(src, { contentType })` sends a pinned cache entry or a
 *   body from its pages, no copy, and releases it once (send.ts). It takes
 *   the response over (reply.hijack()): onSend hooks do not see it.
 * - `app.nofail` holds { pool, shedder }.
 *
 * Routes see the plugin through onRoute, so it must be registered before
 * them (the usual Fastify order); a route registered earlier, and the
 * 404 handler, get no body (request.body undefined; node:http discards it).
 * It never blocks the event loop (see shed.ts). Fastify is an optional peer
 * dependency: only this entry point imports its types.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteOptions } from 'fastify';
import { InvalidArgTypeError, InvalidArgValueError } from '../errors.js';
import type { Pool } from '../mm/index.js';
import { validateOptions } from '../validators.js';
import { contentLength, hasBody } from './http.js';
import { type PageSource, pageSource, sendPages } from './send.js';
import { LoadShedder, type LoadShedOptions, PoolBody, ShedError } from './shed.js';

export interface NofailFastifyOptions extends LoadShedOptions {
  pool: Pool;
  /** Content types whose bodies go into pool pages; default ['application/octet-stream']. */
  contentTypes?: string[];
}

/** A route's `config.nofail`: false, no shedding on the route; shedWithoutBody, shed its body-less requests too under pressure. */
export type NofailRouteConfig = false | { shedWithoutBody?: boolean };

export interface SendPoolOptions {
  /** Default: the reply's content-type header, else 'application/octet-stream'. */
  contentType?: string;
}

declare const POOL_BODY: unique symbol;
/** The type of `poolBody`: a route schema's body that makes request.body a PoolBody. */
export interface PoolBodySchema {
  readonly [POOL_BODY]: 'PoolBody';
}

/**
 * `schema: { body: poolBody }` on a route: request.body is typed PoolBody
 * (through the default type provider, below), and the plugin makes it so
 * at run time — a request whose body is not one (another content type, or
 * none) is answered 415 before the handler runs. The marker is not a JSON
 * schema: the plugin takes it out of the route before Fastify compiles one.
 */
export const poolBody: PoolBodySchema = Object.freeze(Object.create(null)) as PoolBodySchema;

declare module 'fastify' {
  interface FastifyInstance {
    nofail: { pool: Pool; shedder: LoadShedder };
  }
  interface FastifyReply {
    /** Sends a pinned cache entry or a body from its pages (no copy); releases it when the response ends. */
    sendPool(src: PageSource, options?: SendPoolOptions): FastifyReply;
  }
  interface FastifyContextConfig {
    nofail?: NofailRouteConfig;
  }
  // Declaration merging into the default type provider: a route whose
  // schema.body is `poolBody` gets request.body: PoolBody. Every other
  // schema resolves to unknown, as it did (the provider's own default).
  interface FastifyTypeProviderDefault {
    readonly validator: this['schema'] extends PoolBodySchema ? PoolBody : unknown;
  }
}

/** A request whose body the plugin reads: its body, and whether its response has closed. */
interface Upload {
  body: PoolBody | null;
  closed: boolean;
}

type Hook = (req: FastifyRequest, reply: FastifyReply, next: HookHandlerDoneFunction) => void;

const ROUTE_KEYS = ['shedWithoutBody'];

function checkRouteConfig(cfg: unknown, url: string): NofailRouteConfig | undefined {
  if (cfg === undefined || cfg === false) return cfg;
  validateOptions(cfg, `route ${url} config.nofail`, ROUTE_KEYS);
  const s = (cfg as { shedWithoutBody?: unknown }).shedWithoutBody;
  if (s !== undefined && typeof s !== 'boolean') throw new InvalidArgTypeError(`route ${url} config.nofail.shedWithoutBody must be a boolean`);
  return cfg as NofailRouteConfig;
}

const hooks = (h: unknown): Hook[] => (h === undefined ? [] : Array.isArray(h) ? [...(h as Hook[])] : [h as Hook]);

const plugin: FastifyPluginCallback<NofailFastifyOptions> = (app: FastifyInstance, opts, done) => {
  // prefix, logLevel and logSerializers are Fastify's own register() options, not the shedder's.
  const { pool, contentTypes = ['application/octet-stream'], prefix: _p, logLevel: _l, logSerializers: _s, ...shedOptions } =
    opts as NofailFastifyOptions & { prefix?: unknown; logLevel?: unknown; logSerializers?: unknown };
  if (pool === undefined || pool === null || typeof pool.pressure !== 'function') {
    done(new TypeError('nofail fastify plugin: options.pool must be a Pool'));
    return;
  }
  if (!Array.isArray(contentTypes) || !contentTypes.every((t) => typeof t === 'string')) {
    done(new InvalidArgTypeError('nofail fastify plugin: options.contentTypes must be an array of strings'));
    return;
  }
  let shedder: LoadShedder;
  try {
    shedder = new LoadShedder(pool, shedOptions);
  } catch (err) {
    done(err as Error);
    return;
  }
  app.decorate('nofail', { pool, shedder });
  const ours = new Set(contentTypes.map((t) => t.toLowerCase()));
  const isOurs = (ct: string | undefined): boolean => {
    if (ct === undefined) return false;
    const semi = ct.indexOf(';');
    return ours.has((semi < 0 ? ct : ct.slice(0, semi)).trim().toLowerCase());
  };

  // Requests the plugin reads a body for. A body's pages go back when its
  // response closes — after it was sent, or when the connection died
  // first — unless a cache adopted them (free() is then a no-op).
  const uploads = new WeakMap<FastifyRequest, Upload>();
  const track = (req: FastifyRequest, reply: FastifyReply): Upload => {
    const u: Upload = { body: null, closed: false };
    uploads.set(req, u);
    reply.raw.once('close', () => {
      u.closed = true;
      u.body?.free();
    });
    return u;
  };

  /** onRequest, default: claim a declared body's pages now, or refuse before a byte of it is read. */
  const admitBody: Hook = (req, reply, next) => {
    const raw = req.raw;
    if (!hasBody(raw) || !isOurs(raw.headers['content-type'])) return next();
    const u = track(req, reply);
    const length = contentLength(raw);
    if (length === undefined) return next(); // chunked: read page by page by the parser
    shedder.claim(length).then(
      (body) => {
        u.body = body;
        if (u.closed) body.free();
        next();
      },
      (err: Error) => {
        if (err instanceof ShedError) shedder.refuse(reply, err);
        else next(err);
      },
    );
  };
  /** onRequest, shedWithoutBody: the pressure gate for requests without a body, then as above. */
  const admitAll: Hook = (req, reply, next) => {
    if (!hasBody(req.raw)) {
      const err = shedder.gate();
      if (err !== null) {
        shedder.refuse(reply, err);
        return;
      }
      return next();
    }
    admitBody(req, reply, next);
  };
  /** onRequest, nofail: false: no shedding, but the body is still tracked (the parser admits it). */
  const trackOnly: Hook = (req, reply, next) => {
    if (hasBody(req.raw) && isOurs(req.raw.headers['content-type'])) track(req, reply);
    next();
  };
  /** preValidation on a `schema: { body: poolBody }` route: the type's promise, kept. */
  const requirePoolBody: Hook = (req, reply, next) => {
    if (req.body instanceof PoolBody) return next();
    reply.code(415).send({ statusCode: 415, error: 'Unsupported Media Type', message: `this route takes a body of type ${contentTypes.join(' or ')}` });
  };

  app.addHook('onRoute', (route: RouteOptions) => {
    const cfg = checkRouteConfig((route.config as { nofail?: unknown } | undefined)?.nofail, route.url);
    const typed = (route.schema as { body?: unknown } | undefined)?.body === poolBody;
    if (typed) {
      // Not a JSON schema: out of the route before Fastify compiles one.
      const { body: _b, ...rest } = route.schema as Record<string, unknown>;
      route.schema = rest;
      route.preValidation = [...hooks(route.preValidation), requirePoolBody] as RouteOptions['preValidation'];
    }
    const hook = cfg === false ? trackOnly : cfg?.shedWithoutBody === true ? admitAll : admitBody;
    route.onRequest = [...hooks(route.onRequest), hook] as RouteOptions['onRequest'];
  });

  // A refusal decided while the body was being read (a chunked body that
  // outgrew the budget or the size limit) reaches Fastify as a parser
  // error, which it answers with Connection: close — the reset that loses
  // the answer. The refusal keeps its connection and drains instead.
  app.addHook('onError', (req, reply, err, next) => {
    if (err instanceof ShedError && !req.raw.complete) {
      reply.removeHeader('connection');
      shedder.drain(req.raw, reply.raw);
    }
    next();
  });

  app.decorateReply('sendPool', function sendPool(this: FastifyReply, src: PageSource, options: SendPoolOptions = {}) {
    // Checked before the reply is taken over: after hijack() Fastify can no longer answer an error.
    pageSource(src);
    validateOptions(options as unknown, 'sendPool options', ['contentType']);
    if (options.contentType !== undefined && typeof options.contentType !== 'string') throw new InvalidArgTypeError('sendPool options.contentType must be a string');
    const type = options.contentType ?? (this.getHeader('content-type') as string | undefined) ?? 'application/octet-stream';
    this.hijack();
    sendPages(this.raw, src, { status: this.statusCode, contentType: type, headers: this.getHeaders() as OutgoingHttpHeaders });
    return this;
  });

  app.removeContentTypeParser(contentTypes);
  app.addContentTypeParser(contentTypes, { bodyLimit: Number.MAX_SAFE_INTEGER }, (req, payload, next) => {
    const u = uploads.get(req);
    const length = contentLength(req.raw);
    if (u === undefined) {
      // An empty body holds no pages: nothing to track or free.
      if (length === 0) {
        shedder.admit(0, payload).then((body) => next(null, body), next);
        return;
      }
      // A route the plugin does not know (registered before it, or the 404
      // handler) gets no body in pool pages; node:http discards it.
      return next(null, undefined);
    }
    if (u.closed) return next(new InvalidArgValueError('the client went away'));
    const read = u.body !== null && length !== undefined ? shedder.fill(u.body, payload, length) : shedder.admit(length, payload);
    read.then(
      (body) => {
        u.body = body;
        if (u.closed) {
          body.free();
          next(new InvalidArgValueError('the client went away'));
        } else next(null, body);
      },
      (err: Error) => next(err),
    );
  });
  done();
};

// What fastify-plugin would do: no encapsulation, so the hooks apply to
// every route of the app that registers it.
(plugin as unknown as Record<symbol, unknown>)[Symbol.for('skip-override')] = true;
(plugin as unknown as Record<symbol, unknown>)[Symbol.for('fastify.display-name')] = 'nofail';

export default plugin;
export { plugin as nofailFastify };
