// Drives examples/service.mjs with autocannon on loopback into memory
// pressure, and checks what a service author needs to hold:
//   - no corrupted data: every body carries its sha256 end to end (the
//     server checks PUT bodies; this side checks every GET and echo, and
//     that a value is the one stored under its key);
//   - every refused request got a 503 (with Retry-After): no 5xx but 503,
//     no socket error, no timeout; the only other answers are 200/201/404;
//   - nothing leaks, judged by what can leak: once the load stops no page
//     is in flight, after dropping the cache no page is allocated, and the
//     server's live JS heap after a forced GC is back near its level after
//     a warm-up (a bound derived from the bytes the run moved, not from
//     how fast the machine moved them);
//   - RSS is reported (sampled from /proc/<pid>/status): a benchmark
//     number, and `npm run bench:service` keeps a generous bound on it.
// Used by test/service/85-service.test.ts (a short run) and by
// `npm run bench:service` (both policies, longer; see main() below).
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const serviceScript = fileURLToPath(new URL('../examples/service.mjs', import.meta.url));

// Preloaded into the service (node --import): answers 'nofail:heap' on the
// IPC channel with the live heap after a full GC. The channel is unref'd so
// that it never keeps the service alive; gc is there by --expose-gc.
const HEAP_PROBE = `
process.on('message', async (m) => {
  if (m !== 'nofail:heap') return;
  // Twice, a turn apart: the first GC's finalizers free what the second collects.
  gc();
  await new Promise((r) => setImmediate(r));
  gc();
  const u = process.memoryUsage();
  process.send({ heapUsed: u.heapUsed, external: u.external, arrayBuffers: u.arrayBuffers });
});
process.channel?.unref();
`;

/** Starts the example service in a child process; resolves once it listens. */
export function startService(args = []) {
  const child = spawn(
    process.execPath,
    ['--expose-gc', '--import', `data:text/javascript,${encodeURIComponent(HEAP_PROBE)}`, serviceScript, '--port', '0', ...args],
    { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] },
  );
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      child.stdout.off('data', onData);
      child.stdout.resume();
      const info = JSON.parse(out.slice(0, nl));
      resolve({
        ...info,
        url: info.listening,
        child,
        stderr: () => stderr,
        heap: () => liveHeap(child),
        stop: () =>
          new Promise((r) => {
            if (child.exitCode !== null) return r(child.exitCode);
            child.once('exit', (code) => r(code));
            if (child.connected) child.disconnect();
            child.kill('SIGTERM');
          }),
      });
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => reject(new Error(`service exited (${code}) before listening: ${stderr}`)));
  });
}

/**
 * The service's live memory after a full GC, in bytes: the V8 heap plus
 * memory outside it that JS objects hold (Buffers' contents). A body kept
 * by the server as a string or a Buffer, or any per-request object that
 * is never released, shows up here; pool pages do not (they are counted
 * as pages).
 */
function liveHeap(child) {
  return new Promise((resolve, reject) => {
    const onMessage = (m) => {
      if (m === null || typeof m !== 'object' || typeof m.heapUsed !== 'number') return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(m.heapUsed + m.external);
    };
    const onExit = (code) => reject(new Error(`service exited (${code}) before reporting its heap`));
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.send('nofail:heap');
  });
}

export function rssKiB(pid) {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

const sha = (s) => createHash('sha256').update(s).digest('hex');

// Printable bodies: autocannon hands response bodies over as strings.
const ALPHABET = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
function asciiBody(key, n) {
  const b = randomBytes(n);
  for (let i = 0; i < n; i++) b[i] = ALPHABET[b[i] & 63];
  const head = Buffer.from(`${key}:`);
  head.copy(b, 0, 0, Math.min(head.length, n));
  return b.toString('latin1');
}

/**
 * Runs the load: `connections` clients, each request a PUT (putShare),
 * else a GET, else (echoShare) an echo, of keys 0..keys-1 and bodies of
 * minBody..maxBody bytes; `requests` of them, or as many as `seconds`
 * allow. Returns the tallies and autocannon's result.
 */
export async function drive({ url, pid, seconds = 5, requests, connections = 32, keys = 2000, minBody = 1024, maxBody = 96 * 1024, putShare = 0.4, echoShare = 0.2, seed = 1 }) {
  const tally = { statuses: {}, corrupt: [], missingRetryAfter: 0, checked: 0 };
  const note = (status) => (tally.statuses[status] = (tally.statuses[status] ?? 0) + 1);
  let x = seed >>> 0 || 1;
  const rand = () => {
    // xorshift32: reproducible request mix
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
  const rss = [];
  const sampler = setInterval(() => {
    try {
      rss.push(rssKiB(pid));
    } catch {}
  }, 100);

  const onResponse = (status, body, context, headers) => {
    note(status);
    if (status === 503 && headers['retry-after'] === undefined) tally.missingRetryAfter++;
    if (status !== 200) return;
    tally.checked++;
    const sum = headers['x-checksum'];
    if (sum !== sha(Buffer.from(body, 'latin1'))) tally.corrupt.push(`${context.op} ${context.key}: checksum mismatch (${body.length} bytes)`);
    else if (context.op === 'get' && !body.startsWith(`${context.key}:`) && body.length >= context.key.length + 1) {
      tally.corrupt.push(`get ${context.key}: the value of another key (${body.slice(0, 16)})`);
    } else if (context.op === 'echo' && body !== context.sent) tally.corrupt.push(`echo: body differs from what was sent`);
  };
  const setupRequest = (req, context) => {
    const r = rand();
    const key = `k${Math.floor(rand() * keys)}`;
    const n = minBody + Math.floor(rand() * (maxBody - minBody + 1));
    context.key = key;
    if (r < putShare) {
      const body = asciiBody(key, n);
      context.op = 'put';
      return { ...req, method: 'PUT', path: `/kv/${key}`, body, headers: { 'content-type': 'application/octet-stream', 'x-checksum': sha(Buffer.from(body, 'latin1')) } };
    }
    if (r < putShare + echoShare) {
      const body = asciiBody('echo', n);
      context.op = 'echo';
      context.sent = body;
      return { ...req, method: 'POST', path: '/echo', body, headers: { 'content-type': 'application/octet-stream' } };
    }
    context.op = 'get';
    return { ...req, method: 'GET', path: `/kv/${key}`, body: undefined, headers: {} };
  };

  const result = await autocannon({
    url,
    connections,
    // A number of requests (the same work on any machine) or a duration.
    ...(requests !== undefined ? { amount: requests } : { duration: seconds }),
    timeout: 10,
    requests: [{ setupRequest, onResponse }],
  });
  clearInterval(sampler);
  return { tally, result, rssKiB: rss };
}

export async function getJson(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return r.json();
}

/**
 * Waits for the requests cut off when the load stopped to finish (or fail)
 * on their own: polls /debug/pool until no page is in flight, for up to
 * `ms`. Returns the last snapshot, whichever way it ended.
 */
async function settle(url, ms = 30_000) {
  const deadline = Date.now() + ms;
  let s = await getJson(`${url}/debug/pool`);
  while (s.inFlightPages !== 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    s = await getJson(`${url}/debug/pool`);
  }
  return s;
}

/** Folds the correctness tallies of two drives into one. */
function mergeTally(a, b) {
  const statuses = { ...a.statuses };
  for (const [k, v] of Object.entries(b.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
  return { statuses, corrupt: [...a.corrupt, ...b.corrupt], missingRetryAfter: a.missingRetryAfter + b.missingRetryAfter, checked: a.checked + b.checked };
}

/**
 * One policy's run: start the service, warm it up with `warmupRequests`,
 * drop its cache and take its live heap, drive it (`requests`, or
 * `seconds`), let it settle, drop the cache again and take the heap again;
 * check, report.
 */
export async function runPolicy({ policy, seconds, requests, warmupRequests = 500, connections, poolSize = '16MiB', budgetMs = 50, keys, maxBody }) {
  const svc = await startService(['--pool-size', poolSize, '--policy', policy, '--budget-ms', String(budgetMs)]);
  try {
    const rssStart = rssKiB(svc.pid);
    const load = { url: svc.url, pid: svc.pid, connections, keys, maxBody };
    // The warm-up brings the heap to its working size: code compiled, the
    // server's and the parsers' free lists filled, the pool's views made.
    // A number of requests, so that it is the same warm-up on any machine.
    const warm = await drive({ ...load, requests: warmupRequests, seed: 2 });
    const warmed = await settle(svc.url);
    await fetch(`${svc.url}/debug/drop-cache`, { method: 'POST' });
    const heapWarm = await svc.heap();
    const { tally, result, rssKiB: rss } = await drive({ ...load, seconds, requests });
    const after = await settle(svc.url);
    await fetch(`${svc.url}/debug/drop-cache`, { method: 'POST' });
    const dropped = await getJson(`${svc.url}/debug/pool`);
    const heapAfter = await svc.heap();
    const metricsText = await (await fetch(`${svc.url}/metrics`)).text();
    const all = mergeTally(warm.tally, tally);
    const total = Object.values(tally.statuses).reduce((a, b) => a + b, 0);
    const unexpected = Object.entries(all.statuses).filter(([s]) => !['200', '201', '404', '503'].includes(s));
    const bytesAdmitted = after.shed.bytes - warmed.shed.bytes;
    return {
      policy,
      requests: total,
      warmupRequests: Object.values(warm.tally.statuses).reduce((a, b) => a + b, 0),
      rps: result.requests.average,
      p50: result.latency.p50,
      p99: result.latency.p99,
      share503: total ? (tally.statuses[503] ?? 0) / total : 0,
      statuses: tally.statuses,
      // Correctness covers the warm-up too.
      unexpected,
      corrupt: all.corrupt,
      checked: all.checked,
      missingRetryAfter: all.missingRetryAfter,
      errors: warm.result.errors + result.errors,
      timeouts: warm.result.timeouts + result.timeouts,
      peakUsedPages: after.peakUsedPages,
      loopDelayMs: after.eventLoopDelayMs,
      totalPages: after.totalPages,
      rssStartMiB: rssStart / 1024,
      rssPeakMiB: Math.max(rssStart, ...rss) / 1024,
      heapWarmMiB: heapWarm / 2 ** 20,
      heapAfterMiB: heapAfter / 2 ** 20,
      heapGrowth: heapAfter - heapWarm,
      heapGrowthLimit: heapGrowthLimit(bytesAdmitted),
      bytesAdmitted,
      after,
      dropped,
      metricsText,
      shed: after.shed,
    };
  } finally {
    await svc.stop();
  }
}

/** The most the live heap may grow over a run, whatever it moved. */
export const HEAP_GROWTH_MAX_MIB = 8;

/**
 * How far the live heap may end a run above its warm-up level, both
 * after a forced GC with the cache dropped: a tenth of the bytes admitted
 * during the run, and never more than HEAP_GROWTH_MAX_MIB. A server that
 * kept every body grows by all of them, ten times the bound or more (it
 * measured 187 MiB over 2500 requests, against a bound of 8); what is left
 * under the bound is the noise of a heap after GC (code compiled late,
 * free lists, a few sockets not yet closed): 6 to 300 KiB here.
 */
export function heapGrowthLimit(bytesAdmitted) {
  return Math.min(HEAP_GROWTH_MAX_MIB * 2 ** 20, bytesAdmitted / 10);
}

/** The bench's generous bound on RSS growth (see main()): not part of checkRun's verdict. */
export const RSS_GROWTH_LIMIT_MIB = 192;

/**
 * What must hold after a run (the test asserts the same, one by one):
 * returns the broken ones as text. The leak verdict is pages and the live
 * heap; RSS is left out: it measures V8's heap sizing as much as what the
 * server keeps.
 */
export function checkRun(r) {
  const p = [];
  if (r.corrupt.length) p.push(`${r.corrupt.length} corrupted responses (${r.corrupt.slice(0, 3).join(' | ')})`);
  if (r.unexpected.length) p.push(`unexpected statuses ${JSON.stringify(r.unexpected)}`);
  if (r.missingRetryAfter) p.push(`${r.missingRetryAfter} 503s without Retry-After`);
  if (r.errors || r.timeouts) p.push(`${r.errors} socket errors, ${r.timeouts} timeouts`);
  if (r.after.inFlightPages !== 0) p.push(`${r.after.inFlightPages} pages still in flight after the load`);
  if (r.dropped.allocatedPages !== 0 || r.dropped.cachePages !== 0) p.push(`pages not back after dropping the cache: ${JSON.stringify(r.dropped)}`);
  if (!(r.heapGrowth < r.heapGrowthLimit)) {
    p.push(
      `live heap grew ${(r.heapGrowth / 2 ** 20).toFixed(2)} MiB over the run (${r.heapWarmMiB.toFixed(1)} -> ${r.heapAfterMiB.toFixed(1)} MiB after GC; ` +
        `limit ${(r.heapGrowthLimit / 2 ** 20).toFixed(2)} MiB for ${(r.bytesAdmitted / 2 ** 20).toFixed(0)} MiB of bodies admitted)`,
    );
  }
  return p;
}

export function formatRun(r) {
  return (
    `${r.policy.padEnd(8)} ${String(Math.round(r.rps)).padStart(7)} req/s  p50 ${String(r.p50).padStart(4)} ms  p99 ${String(r.p99).padStart(5)} ms  ` +
    `503 ${(r.share503 * 100).toFixed(1).padStart(5)} %  peak pool ${r.peakUsedPages}/${r.totalPages} pages  ` +
    `loop delay p99 ${r.loopDelayMs.p99.toFixed(1)} max ${r.loopDelayMs.max.toFixed(1)} ms  RSS ${r.rssStartMiB.toFixed(0)} -> peak ${r.rssPeakMiB.toFixed(0)} MiB  ` +
    `live heap ${r.heapWarmMiB.toFixed(1)} -> ${r.heapAfterMiB.toFixed(1)} MiB (${(r.bytesAdmitted / 2 ** 20).toFixed(0)} MiB admitted)  checked ${r.checked}  corrupt ${r.corrupt.length}  ` +
    `errors ${r.errors} timeouts ${r.timeouts}  statuses ${JSON.stringify(r.statuses)}  shed ${JSON.stringify(r.shed.shed)}`
  );
}

async function main() {
  const { parseArgs } = await import('node:util');
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '20' },
      connections: { type: 'string', default: '64' },
      'pool-size': { type: 'string', default: '4MiB' },
      'budget-ms': { type: 'string', default: '50' },
      policies: { type: 'string', default: 'loop,reserve' },
      'max-body': { type: 'string', default: String(512 * 1024) },
      keys: { type: 'string', default: '500' },
    },
  });
  console.log(
    `service load: ${values.seconds} s per policy, ${values.connections} connections, pool ${values['pool-size']}, ` +
      `bodies 1 KiB..${Math.round(Number(values['max-body']) / 1024)} KiB, ${values.keys} keys, budget ${values['budget-ms']} ms, node ${process.version}`,
  );
  let bad = 0;
  for (const policy of values.policies.split(',')) {
    const r = await runPolicy({ policy, seconds: Number(values.seconds), connections: Number(values.connections), poolSize: values['pool-size'], budgetMs: Number(values['budget-ms']), maxBody: Number(values['max-body']), keys: Number(values.keys) });
    console.log(formatRun(r));
    const problems = checkRun(r);
    // Under overload the process must not balloon either: V8's heaps grow
    // to their working size (40-70 MiB here) and stop. A generous bound, a
    // benchmark's: the test judges leaks by pages and the live heap.
    if (r.rssPeakMiB - r.rssStartMiB >= RSS_GROWTH_LIMIT_MIB) {
      problems.push(`RSS grew ${(r.rssPeakMiB - r.rssStartMiB).toFixed(0)} MiB (limit ${RSS_GROWTH_LIMIT_MIB})`);
    }
    if (problems.length) {
      bad++;
      console.log(`  !! FAILED: ${problems.join('; ')}`);
    }
  }
  process.exitCode = bad ? 1 : 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
