#!/usr/bin/env node
// An HTTP key-value service whose memory is a nofail pool:
//   - request bodies are read into pool pages by the load shedder (503 with
//     Retry-After when the pool cannot give a body's pages within budget,
//     or while PSI / free pages say the pool is under pressure; 413 for
//     bodies over the limit);
//   - values live in a PoolCache (pool pages, LRU, given back by the
//     shrinker under pressure) and are served from its pages without a copy;
//   - /metrics is the pool's Prometheus exposition plus the service's own.
//
// Routes:
//   PUT  /kv/:key   body stored under key; the client's x-checksum
//                   (sha256 hex of the body) is checked first (400 if wrong).
//                   201, or 503 when the value cannot be cached.
//   GET  /kv/:key   200 with the value and its x-checksum, or 404.
//   POST /echo      the body back, from the pool pages it was read into.
//   GET  /metrics   Prometheus text format.
//   GET  /debug/pool  JSON: page accounting (checks the pool's invariants).
//   POST /debug/drop-cache  empties the cache.
//
// Run: node examples/service.mjs [--port 8080] [--pool-size 64MiB]
//        [--cache-size 48MiB] [--policy reserve|loop|nowait] [--budget-ms 50]
// It prints one JSON line {"listening": url, ...} when ready.
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { exposition, LoadShedder, METRICS_CONTENT_TYPE, metricsOf, Pool, PoolCache, readPoolBody } from 'nofail';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.PORT ?? '8080' },
    host: { type: 'string', default: '127.0.0.1' },
    'pool-size': { type: 'string', default: '64MiB' },
    'cache-size': { type: 'string' },
    policy: { type: 'string', default: 'reserve' },
    'budget-ms': { type: 'string', default: '50' },
    'max-body': { type: 'string', default: '1MiB' },
  },
});

const pool = Pool.create({ size: args['pool-size'] });
const total = pool.totalPages;
// By default the cache may fill the whole pool: what bounds it then is
// reclaim — request bodies in flight take pages back through its shrinker.
const cache = new PoolCache(pool, { maxBytes: args['cache-size'] ?? total * 4096, name: 'kv-cache' });
const shedder = new LoadShedder(pool, {
  policy: args.policy,
  budgetMs: Number(args['budget-ms']),
  maxBodyBytes: args['max-body'],
});

const DIGEST = 32; // a value is stored as sha256(body) followed by the body
const sha256 = (parts) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

// Peak pages in use, sampled cheaply (pool.pressure() is ~1 µs).
let peakUsed = 0;
const sampler = setInterval(() => {
  peakUsed = Math.max(peakUsed, total - pool.pressure().freePages);
}, 10);
sampler.unref();

// Event-loop delay: admission must never block the loop (every wait is async).
const loopDelay = monitorEventLoopDelay({ resolution: 5 });
loopDelay.enable();

const served = { put: 0, get: 0, miss: 0, echo: 0, badChecksum: 0, cacheFull: 0 };

function reply(res, status, text, headers = {}) {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
  res.end(text);
}

/** Writes views of pool pages and calls done once the response is finished or dead. */
function sendPages(res, status, headers, buffers, size, done) {
  let called = false;
  const once = () => {
    if (!called) {
      called = true;
      done();
    }
  };
  // 'close' comes after the last byte went out, or when the connection
  // died; if it already died, no event will come.
  if (res.destroyed) return once();
  res.once('close', once);
  res.writeHead(status, { 'content-length': size, ...headers });
  for (const b of buffers) res.write(b);
  res.end(once);
}

async function put(req, res, key) {
  const body = await readPoolBody(shedder, req, res);
  if (body === null) return;
  try {
    const parts = body.buffers();
    const digest = sha256(parts);
    if (req.headers['x-checksum'] !== digest.toString('hex')) {
      served.badChecksum++;
      return reply(res, 400, 'checksum mismatch\n');
    }
    if (!cache.set(key, [digest, ...parts])) {
      served.cacheFull++;
      return reply(res, 503, 'no memory to cache the value\n', { 'retry-after': String(shedder.options.retryAfterSeconds) });
    }
    served.put++;
    reply(res, 201, 'stored\n');
  } finally {
    body.free();
  }
}

function get(res, key) {
  const ref = cache.acquire(key);
  if (ref === undefined) {
    served.miss++;
    return reply(res, 404, 'not found\n');
  }
  served.get++;
  const [first, ...rest] = ref.buffers;
  const checksum = first.subarray(0, DIGEST).toString('hex');
  sendPages(res, 200, { 'content-type': 'application/octet-stream', 'x-checksum': checksum }, [first.subarray(DIGEST), ...rest], ref.size - DIGEST, ref.release);
}

async function echo(req, res) {
  const body = await readPoolBody(shedder, req, res);
  if (body === null) return;
  served.echo++;
  const parts = body.buffers();
  sendPages(res, 200, { 'content-type': 'application/octet-stream', 'x-checksum': sha256(parts).toString('hex') }, parts, body.size, () => body.free());
}

function metrics(res) {
  const sh = shedder.stats();
  const c = cache.stats();
  const mine = [
    { name: 'kv_shed_total', type: 'counter', help: 'Requests refused by the load shedder, by reason.', samples: Object.entries(sh.shed).map(([reason, value]) => ({ labels: { reason }, value })) },
    { name: 'kv_admitted_total', type: 'counter', help: 'Request bodies admitted into pool pages.', samples: [{ labels: {}, value: sh.admitted }] },
    { name: 'kv_cache_pages', type: 'gauge', help: 'Pages held by the value cache.', samples: [{ labels: {}, value: c.pages }] },
    { name: 'kv_cache_entries', type: 'gauge', help: 'Entries in the value cache.', samples: [{ labels: {}, value: c.entries }] },
    ...['hits', 'misses', 'evictions', 'shrunk', 'setFailures'].map((k) => ({
      name: `kv_cache_${k.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`)}_total`,
      type: 'counter',
      help: `Value cache: ${k}.`,
      samples: [{ labels: {}, value: c[k] }],
    })),
    { name: 'kv_event_loop_delay_seconds', type: 'gauge', help: 'Event-loop delay percentiles since start.', samples: [50, 99].map((q) => ({ labels: { quantile: String(q / 100) }, value: loopDelay.percentile(q) / 1e9 })) },
    { name: 'kv_peak_used_pages', type: 'gauge', help: 'Most pages in use at once (sampled every 10 ms).', samples: [{ labels: {}, value: peakUsed }] },
  ];
  res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE });
  res.end(metricsOf(pool) + exposition(mine));
}

function debugPool(res) {
  pool.checkInvariants();
  const s = pool.stats();
  const c = cache.stats();
  const body = {
    totalPages: s.totalPages,
    freePages: s.freePages,
    // free + cached + allocated == total; allocated is what callers hold.
    cachedPages: s.cachedPages,
    allocatedPages: s.allocatedPages,
    cachePages: c.pages,
    // Pages held by anything but the value cache: requests in flight.
    inFlightPages: s.allocatedPages - c.pages,
    peakUsedPages: peakUsed,
    eventLoopDelayMs: { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
    served,
    shed: shedder.stats(),
    cache: c,
  };
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  const kv = /^\/kv\/([A-Za-z0-9._-]{1,128})$/.exec(url);
  const handle = () => {
    if (kv && req.method === 'PUT') return put(req, res, kv[1]);
    if (kv && req.method === 'GET') return get(res, kv[1]);
    if (url === '/echo' && req.method === 'POST') return echo(req, res);
    if (url === '/metrics' && req.method === 'GET') return metrics(res);
    if (url === '/debug/pool' && req.method === 'GET') return debugPool(res);
    if (url === '/debug/drop-cache' && req.method === 'POST') {
      cache.clear();
      return reply(res, 204, '');
    }
    reply(res, 404, 'no such route\n');
  };
  Promise.resolve()
    .then(handle)
    .catch((err) => {
      console.error(err);
      if (!res.headersSent) reply(res, 500, `internal error: ${err?.code ?? err?.message}\n`);
      else res.destroy();
    });
});
server.keepAliveTimeout = 10_000;

server.listen(Number(args.port), args.host, () => {
  const { port } = server.address();
  console.log(JSON.stringify({ listening: `http://${args.host}:${port}`, pid: process.pid, pool: args['pool-size'], totalPages: total, policy: shedder.options.policy }));
});

const stop = () => {
  server.close();
  server.closeAllConnections();
  cache.close();
  pool.close();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
