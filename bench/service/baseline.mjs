#!/usr/bin/env node
// The baseline for the service load test: the same key-value service
// (routes in common.mjs) as a Node user writes it today, without nofail.
// Bodies are Buffers (Fastify's parseAs 'buffer': the chunks, then one
// concat), values live in lru-cache bounded by maxSize (bytes), responses
// are the Buffers, and @fastify/under-pressure sheds with 503 on event-loop
// delay and utilization, configured as its README shows (it cannot see
// Buffer memory: heapUsed leaves it out, and RSS is sampled once a second).
//
//   node bench/service/baseline.mjs [--memory 16MiB] [--hog 4MiB] [--max-body 1MiB]
import underPressure from '@fastify/under-pressure';
import Fastify from 'fastify';
import { LRUCache } from 'lru-cache';
import { debugRoutes, listen, sampler, serviceArgs, sha256 } from './common.mjs';

const args = serviceArgs();
// The other tenant: memory held for the whole run.
const hog = args.hogBytes > 0 ? Buffer.alloc(args.hogBytes, 1) : null;
const cache = new LRUCache({ maxSize: args.memoryBytes, sizeCalculation: (e) => Math.max(1, e.value.length) });

const app = Fastify({ keepAliveTimeout: 10_000, bodyLimit: args.maxBodyBytes });
await app.register(underPressure, { maxEventLoopDelay: 1000, maxEventLoopUtilization: 0.98, retryAfter: 1 });
app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
const served = { put: 0, get: 0, miss: 0, echo: 0, badChecksum: 0 };

app.put('/kv/:key', (req, reply) => {
  const sha = sha256([req.body]);
  if (req.headers['x-checksum'] !== sha) {
    served.badChecksum++;
    return reply.code(400).send('checksum mismatch\n');
  }
  cache.set(req.params.key, { value: req.body, sha });
  served.put++;
  return reply.code(201).send('stored\n');
});

app.get('/kv/:key', (req, reply) => {
  const e = cache.get(req.params.key);
  if (e === undefined) {
    served.miss++;
    return reply.code(404).send('not found\n');
  }
  served.get++;
  return reply.header('x-checksum', e.sha).type('application/octet-stream').send(e.value);
});

app.post('/echo', (req, reply) => {
  served.echo++;
  return reply.header('x-checksum', sha256([req.body])).type('application/octet-stream').send(req.body);
});

// Nothing here counts bodies in flight (a hook to count them would be a
// cost the user's service does not pay): the window samples nothing.
const window = sampler(() => 0);
debugRoutes(app, {
  window,
  dropCache: () => cache.clear(),
  stats: () => ({
    variant: 'baseline',
    served,
    cache: { entries: cache.size, bytes: cache.calculatedSize },
    hogBytes: hog?.length ?? 0,
    memory: process.memoryUsage(),
  }),
});

await listen(app, args, { variant: 'baseline' });
