/**
 * A Fastify plugin in the spirit of @fastify/under-pressure, for a pool:
 *
 *   await app.register(nofailFastify, { pool, policy: 'reserve', budgetMs: 50 });
 *
 * - onRequest: while the pool is under pressure (PSI some/full, free pages
 *   below a watermark) every request is answered 503 with Retry-After
 *   before any work is done (exposed routes may opt out with
 *   `config: { nofail: false }`);
 * - bodies of the given content types (default application/octet-stream)
 *   are read into pool pages by the LoadShedder: `request.body` is a
 *   PoolBody, freed by the plugin when the response is closed (sent, or its
 *   connection gone); a body that
 *   cannot be had within the budget is a 503, one over maxBodyBytes a 413;
 * - `app.nofail` holds { pool, shedder }.
 * It never blocks the event loop (see shed.ts). Fastify is an optional peer
 * dependency: only this entry point imports its types.
 */
import type { FastifyInstance, FastifyPluginCallback, FastifyRequest } from 'fastify';
import type { Pool } from '../mm/index.js';
import { contentLength } from './http.js';
import { LoadShedder, type LoadShedOptions, PoolBody } from './shed.js';

export interface NofailFastifyOptions extends LoadShedOptions {
  pool: Pool;
  /** Content types whose bodies go into pool pages; default ['application/octet-stream']. */
  contentTypes?: string[];
}

declare module 'fastify' {
  interface FastifyInstance {
    nofail: { pool: Pool; shedder: LoadShedder };
  }
}

const plugin: FastifyPluginCallback<NofailFastifyOptions> = (app: FastifyInstance, opts, done) => {
  // prefix, logLevel and logSerializers are Fastify's own register() options, not the shedder's.
  const { pool, contentTypes = ['application/octet-stream'], prefix: _p, logLevel: _l, logSerializers: _s, ...shedOptions } =
    opts as NofailFastifyOptions & { prefix?: unknown; logLevel?: unknown; logSerializers?: unknown };
  if (pool === undefined || pool === null || typeof pool.pressure !== 'function') {
    done(new TypeError('nofail fastify plugin: options.pool must be a Pool'));
    return;
  }
  const shedder = new LoadShedder(pool, shedOptions);
  app.decorate('nofail', { pool, shedder });

  // A body's pages go back when its response is closed: after it was sent,
  // or when the connection died first (then no onResponse runs). A body
  // admitted after that (its pages were waited for) is freed at once.
  const closed = new WeakSet<FastifyRequest>();
  const release = (req: FastifyRequest): void => {
    if (req.body instanceof PoolBody) req.body.free();
  };
  const optedOut = (req: FastifyRequest): boolean => (req.routeOptions.config as { nofail?: boolean } | undefined)?.nofail === false;

  app.addHook('onRequest', (req: FastifyRequest, reply, next) => {
    reply.raw.once('close', () => {
      closed.add(req);
      release(req);
    });
    if (optedOut(req)) return next();
    const err = shedder.gate();
    if (err === null) return next();
    reply.code(503).headers(err.headers).send({ statusCode: 503, error: 'Service Unavailable', message: err.message });
  });

  app.removeContentTypeParser(contentTypes);
  app.addContentTypeParser(contentTypes, { bodyLimit: Number.MAX_SAFE_INTEGER }, (req, payload, next) => {
    // onRequest already applied the pressure gate.
    shedder.admit(contentLength(req.raw), payload, { checkPressure: false }).then(
      (body) => {
        if (closed.has(req)) {
          body.free();
          next(new Error('the client went away'));
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
