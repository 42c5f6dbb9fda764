// Drives examples/service.mjs with autocannon on loopback into memory
// pressure, and checks what a service author needs to hold:
//   - no corrupted data: every body carries its sha256 end to end (the
//     server checks PUT bodies; this side checks every GET and echo, and
//     that a value is the one stored under its key);
//   - every refused request got a 503 (with Retry-After): no 5xx but 503,
//     no socket error, no timeout; the only other answers are 200/201/404;
//   - the server's RSS stays bounded (sampled from /proc/<pid>/status);
//   - once the load stops every page is back: nothing in flight, and
//     after dropping the cache every page is free.
// Used by test/service/85-service.test.ts (a short run) and by
// `npm run bench:service` (both policies, longer; see main() below).
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const serviceScript = fileURLToPath(new URL('../examples/service.mjs', import.meta.url));

/** Starts the example service in a child process; resolves once it listens. */
export function startService(args = []) {
  const child = spawn(process.execPath, [serviceScript, '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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
        stop: () =>
          new Promise((r) => {
            if (child.exitCode !== null) return r(child.exitCode);
            child.once('exit', (code) => r(code));
            child.kill('SIGTERM');
          }),
      });
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => reject(new Error(`service exited (${code}) before listening: ${stderr}`)));
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
 * minBody..maxBody bytes. Returns the tallies and autocannon's result.
 */
export async function drive({ url, pid, seconds = 5, connections = 32, keys = 2000, minBody = 1024, maxBody = 96 * 1024, putShare = 0.4, echoShare = 0.2, seed = 1 }) {
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
    duration: seconds,
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

/** One policy's run: start the service, drive it, check, report. */
export async function runPolicy({ policy, seconds, connections, poolSize = '16MiB', budgetMs = 50, keys, maxBody }) {
  const svc = await startService(['--pool-size', poolSize, '--policy', policy, '--budget-ms', String(budgetMs)]);
  try {
    const rssStart = rssKiB(svc.pid);
    const { tally, result, rssKiB: rss } = await drive({ url: svc.url, pid: svc.pid, seconds, connections, keys, maxBody });
    // Requests cut off when the load stopped finish (or fail) on their own:
    // give them a moment before counting pages in flight.
    let after = await getJson(`${svc.url}/debug/pool`);
    for (let i = 0; i < 30 && after.inFlightPages !== 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await getJson(`${svc.url}/debug/pool`);
    }
    await fetch(`${svc.url}/debug/drop-cache`, { method: 'POST' });
    const dropped = await getJson(`${svc.url}/debug/pool`);
    const metricsText = await (await fetch(`${svc.url}/metrics`)).text();
    const total = Object.values(tally.statuses).reduce((a, b) => a + b, 0);
    const unexpected = Object.entries(tally.statuses).filter(([s]) => !['200', '201', '404', '503'].includes(s));
    return {
      policy,
      requests: total,
      rps: result.requests.average,
      p50: result.latency.p50,
      p99: result.latency.p99,
      share503: total ? (tally.statuses[503] ?? 0) / total : 0,
      statuses: tally.statuses,
      unexpected,
      corrupt: tally.corrupt,
      checked: tally.checked,
      missingRetryAfter: tally.missingRetryAfter,
      errors: result.errors,
      timeouts: result.timeouts,
      peakUsedPages: after.peakUsedPages,
      loopDelayMs: after.eventLoopDelayMs,
      totalPages: after.totalPages,
      rssStartMiB: rssStart / 1024,
      rssPeakMiB: Math.max(rssStart, ...rss) / 1024,
      bytesAdmitted: after.shed.bytes,
      after,
      dropped,
      metricsText,
      shed: after.shed,
    };
  } finally {
    await svc.stop();
  }
}

export const RSS_GROWTH_LIMIT_MIB = 192;

/**
 * What must hold after a run (the test asserts the same, one by one):
 * returns the broken ones as text.
 */
export function checkRun(r) {
  const p = [];
  if (r.corrupt.length) p.push(`${r.corrupt.length} corrupted responses (${r.corrupt.slice(0, 3).join(' | ')})`);
  if (r.unexpected.length) p.push(`unexpected statuses ${JSON.stringify(r.unexpected)}`);
  if (r.missingRetryAfter) p.push(`${r.missingRetryAfter} 503s without Retry-After`);
  if (r.errors || r.timeouts) p.push(`${r.errors} socket errors, ${r.timeouts} timeouts`);
  // Bounded: V8's heaps grow to their working size (40-70 MiB here) and no
  // further; bodies held in the JS heap or leaked pages would not stop.
  if (r.rssPeakMiB - r.rssStartMiB >= RSS_GROWTH_LIMIT_MIB) {
    p.push(`RSS grew ${(r.rssPeakMiB - r.rssStartMiB).toFixed(0)} MiB (limit ${RSS_GROWTH_LIMIT_MIB}, ${(r.bytesAdmitted / 2 ** 20).toFixed(0)} MiB of bodies admitted)`);
  }
  if (r.after.inFlightPages !== 0) p.push(`${r.after.inFlightPages} pages still in flight after the load`);
  if (r.dropped.allocatedPages !== 0 || r.dropped.cachePages !== 0) p.push(`pages not back after dropping the cache: ${JSON.stringify(r.dropped)}`);
  return p;
}

export function formatRun(r) {
  return (
    `${r.policy.padEnd(8)} ${String(Math.round(r.rps)).padStart(7)} req/s  p50 ${String(r.p50).padStart(4)} ms  p99 ${String(r.p99).padStart(5)} ms  ` +
    `503 ${(r.share503 * 100).toFixed(1).padStart(5)} %  peak pool ${r.peakUsedPages}/${r.totalPages} pages  ` +
    `loop delay p99 ${r.loopDelayMs.p99.toFixed(1)} max ${r.loopDelayMs.max.toFixed(1)} ms  RSS ${r.rssStartMiB.toFixed(0)} -> peak ${r.rssPeakMiB.toFixed(0)} MiB  checked ${r.checked}  corrupt ${r.corrupt.length}  ` +
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
    if (problems.length) {
      bad++;
      console.log(`  !! FAILED: ${problems.join('; ')}`);
    }
  }
  process.exitCode = bad ? 1 : 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
