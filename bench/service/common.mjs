// What the two versions of the bench's key-value service share, so that
// they differ only in where their memory comes from (nofail.mjs: a pool;
// baseline.mjs: Buffers): the command line, the checksum, the other
// tenant's share, the debug routes the load test reads, and the one JSON
// line that says the service listens.
//
// Routes (both versions):
//   PUT  /kv/:key       body stored under key after its x-checksum (sha256
//                       hex) is checked (400 if wrong); 201
//   GET  /kv/:key       200 with the value and its x-checksum, or 404
//   POST /echo          the body back with its x-checksum
//   GET  /debug/stats   JSON: what the service counted (served, shed, memory)
//   POST /debug/window  starts a sampling window of the memory bodies hold
//   GET  /debug/window  ends it: average and peak
//   POST /debug/drop-cache
import { createHash } from 'node:crypto';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

/** Time spent in garbage collection since start, ms (both versions report it: Buffers cost GC). */
let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });
export const gcTime = () => gcMs;

/** Event-loop delay (both versions): what a long synchronous stretch costs every request waiting behind it. */
const loopDelay = monitorEventLoopDelay({ resolution: 5 });
loopDelay.enable();
const loopDelayMs = () => ({ p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 });

export function serviceArgs() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      // The service's memory: nofail's pool; the baseline's lru-cache maxSize.
      memory: { type: 'string', default: '16MiB' },
      // Another tenant's share of it, held for the whole run (nofail: pool
      // pages; the baseline: a Buffer of that size).
      hog: { type: 'string', default: '0' },
      'budget-ms': { type: 'string', default: '50' },
      'max-body': { type: 'string', default: String(1024 * 1024) },
      policy: { type: 'string', default: 'reserve' },
    },
  });
  return {
    port: Number(values.port),
    host: values.host,
    memoryBytes: bytes(values.memory),
    hogBytes: bytes(values.hog),
    budgetMs: Number(values['budget-ms']),
    maxBodyBytes: bytes(values['max-body']),
    policy: values.policy,
  };
}

/** '16MiB', '512KiB' or a number of bytes. */
export function bytes(s) {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)?$/i.exec(String(s).trim());
  if (!m) throw new Error(`not a size: ${s}`);
  const unit = { b: 1, kib: 1024, mib: 2 ** 20, gib: 2 ** 30 }[(m[2] ?? 'b').toLowerCase()];
  return Math.round(Number(m[1]) * unit);
}

export function sha256(parts) {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/**
 * A sampling window over `read()` (every `everyMs`, on an unref'd timer):
 * start() opens it, stop() returns { avg, max, samples } for the time it
 * was open. The load test opens one over its overload phase.
 */
export function sampler(read, everyMs = 10) {
  let timer = null;
  let sum = 0;
  let max = 0;
  let n = 0;
  return {
    start() {
      clearInterval(timer);
      sum = max = n = 0;
      timer = setInterval(() => {
        const v = read();
        sum += v;
        max = Math.max(max, v);
        n++;
      }, everyMs);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
      timer = null;
      return { avg: n ? sum / n : 0, max, samples: n };
    },
  };
}

/** The debug routes both versions answer (see the file comment). */
export function debugRoutes(app, { stats, window, dropCache }) {
  const opt = { config: { nofail: false } };
  app.get('/debug/stats', opt, async () => ({ ...stats(), gcMs, loopDelayMs: loopDelayMs() }));
  app.post('/debug/reset-loop-delay', opt, async () => {
    loopDelay.reset();
    return { reset: true };
  });
  app.post('/debug/window', opt, async () => {
    window.start();
    return { started: true };
  });
  app.get('/debug/window', opt, async () => window.stop());
  app.post('/debug/drop-cache', opt, async (_req, reply) => {
    dropCache();
    return reply.code(204).send();
  });
}

/** Listens and prints the one JSON line the load test waits for. */
export async function listen(app, args, info) {
  await app.listen({ port: args.port, host: args.host });
  const { port } = app.server.address();
  console.log(JSON.stringify({ listening: `http://${args.host}:${port}`, pid: process.pid, ...info }));
  const stop = () => app.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
