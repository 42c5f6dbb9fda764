#!/usr/bin/env node
// An HTTP key-value service whose memory is a nofail pool, with no copy of
// a value after it left the socket:
//   - request bodies are read into pool pages by the load shedder: a body of
//     declared length is admitted or refused before it is read (503 with
//     Retry-After when its pages cannot be had within budget — free memory,
//     then the cache's reclaimable pages, then a short wait; 413 over the
//     limit), and a refused client still reads its answer;
//   - a stored body becomes the cache entry itself: cache.adopt() takes its
//     pages, with the sha256 as the entry's meta (LRU, given back by the
//     shrinker under pressure);
//   - responses are written from pool pages (sendPages: one writev, the
//     pages released when the response finishes or its connection dies);
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
import { exposition, LoadShedder, METRICS_CONTENT_TYPE, metricsOf, Pool, PoolCache, readPoolBody, sendPages } from 'nofail';

const USAGE = `Usage: node examples/service.mjs [options]

An HTTP key-value service whose memory is a nofail pool. Prints one JSON line
{"listening": url, ...} when ready.

Options:
  --port <N>          port to listen on (default $PORT or 8080)
  --host <ADDR>       address to listen on (default 127.0.0.1)
  --pool-size <SIZE>  the pool (default 64MiB)
  --cache-size <SIZE> the value cache's limit (default: the whole pool)
  --policy <P>        load shedding: reserve, loop or nowait (default reserve)
  --budget-ms <MS>    how long a body may wait for its pages (default 50)
  --max-body <SIZE>   bodies over this get 413 (default 1MiB)
  -h, --help          print this and exit
`;

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      port: { type: 'string', default: process.env.PORT ?? '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      'pool-size': { type: 'string', default: '64MiB' },
      'cache-size': { type: 'string' },
      policy: { type: 'string', default: 'reserve' },
      'budget-ms': { type: 'string', default: '50' },
      'max-body': { type: 'string', default: '1MiB' },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (e) {
  // An unknown option or a missing value: say which, show the usage, exit 2 (no stack trace).
  process.stderr.write(`error: ${e.message}\n\n${USAGE}`);
  process.exit(2);
}
if (args.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

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

const sha256 = (parts) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
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

async function put(req, res, key) {
  const body = await readPoolBody(shedder, req, res);
  if (body === null) return;
  try {
    const sha = sha256(body.buffers());
    if (req.headers['x-checksum'] !== sha) {
      served.badChecksum++;
      return reply(res, 400, 'checksum mismatch\n');
    }
    // The body's pages become the entry (no copy); false only for a value
    // larger than the whole cache, which is then refused like any other.
    if (!cache.adopt(key, body, { sha })) {
      served.cacheFull++;
      return shedder.refuse(res, 'no-memory');
    }
    served.put++;
    reply(res, 201, 'stored\n');
  } finally {
    body.free(); // a no-op once adopted
  }
}

function get(res, key) {
  const ref = cache.acquire(key);
  if (ref === undefined) {
    served.miss++;
    return reply(res, 404, 'not found\n');
  }
  served.get++;
  // The pin is the response's now: released when it finishes or dies.
  sendPages(res, ref, { headers: { 'x-checksum': ref.meta.sha } });
}

async function echo(req, res) {
  const body = await readPoolBody(shedder, req, res);
  if (body === null) return;
  served.echo++;
  sendPages(res, body, { headers: { 'x-checksum': sha256(body.buffers()) } });
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
    // Of those, the pages of bodies being read or handled (the shedder's count).
    bodyPages: shedder.stats().bodyPages,
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
