#!/usr/bin/env node
// The bench's key-value service on Fastify with nofail (routes in
// common.mjs): the plugin reads octet-stream bodies into pool pages
// (a declared length admitted or refused in onRequest), a stored body
// becomes its cache entry without a copy (cache.adopt, the sha256 as meta),
// and GET and echo answer from pool pages (reply.sendPool). The pool is all
// the memory: values, bodies in flight and the other tenant's share.
//
//   node bench/service/nofail.mjs [--memory 16MiB] [--hog 4MiB] [--budget-ms 50] [--max-body 1MiB]
import Fastify from 'fastify';
import { GFP, Pool, PoolCache } from 'nofail';
import nofailFastify, { poolBody } from 'nofail/fastify';
import { debugRoutes, listen, sampler, serviceArgs, sha256 } from './common.mjs';

const args = serviceArgs();
const pool = Pool.create({ size: args.memoryBytes });
// The other tenant: pages it holds for the whole run, out of reach of reclaim.
const hog = args.hogBytes > 0 ? pool.allocBulk(Math.ceil(args.hogBytes / 4096), GFP.KERNEL) : [];
// The cache may fill what is left: reclaim bounds it (bodies take its pages through its shrinker).
const cache = new PoolCache(pool, { maxBytes: pool.totalPages * 4096, name: 'kv' });

const app = Fastify({ keepAliveTimeout: 10_000 });
await app.register(nofailFastify, { pool, policy: args.policy, budgetMs: args.budgetMs, maxBodyBytes: args.maxBodyBytes });
const { shedder } = app.nofail;
const served = { put: 0, get: 0, miss: 0, echo: 0, badChecksum: 0 };

app.put('/kv/:key', { schema: { body: poolBody } }, (req, reply) => {
  const body = req.body;
  const sha = sha256(body.buffers());
  if (req.headers['x-checksum'] !== sha) {
    served.badChecksum++;
    return reply.code(400).send('checksum mismatch\n');
  }
  // The body's pages become the entry; false only for a value larger than the cache.
  if (!cache.adopt(req.params.key, body, { sha })) return shedder.refuse(reply, 'no-memory');
  served.put++;
  return reply.code(201).send('stored\n');
});

app.get('/kv/:key', (req, reply) => {
  const ref = cache.acquire(req.params.key);
  if (ref === undefined) {
    served.miss++;
    return reply.code(404).send('not found\n');
  }
  served.get++;
  return reply.header('x-checksum', ref.meta.sha).sendPool(ref);
});

app.post('/echo', { schema: { body: poolBody } }, (req, reply) => {
  served.echo++;
  return reply.header('x-checksum', sha256(req.body.buffers())).sendPool(req.body);
});

const window = sampler(() => shedder.stats().bodyPages);
debugRoutes(app, {
  window,
  dropCache: () => cache.clear(),
  stats: () => {
    const s = pool.stats();
    return {
      variant: 'nofail',
      served,
      shed: shedder.stats(),
      cache: cache.stats(),
      pool: { totalPages: s.totalPages, freePages: s.freePages, cachedPages: s.cachedPages, allocatedPages: s.allocatedPages },
      hogPages: hog.length,
      // What the other tenant leaves: the pages bodies and values may have.
      availablePages: s.totalPages - hog.length,
      memory: process.memoryUsage(),
    };
  },
});

await listen(app, args, { variant: 'nofail', totalPages: pool.totalPages, hogPages: hog.length });
