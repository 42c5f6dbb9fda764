// The service load test's driver: starts a service in a child process (the
// example, or a version in bench/service/), drives it with autocannon, and
// reads what the service and /proc say about it. bench/service-load.mjs
// (the comparison) and bench/service/leak.mjs (the example's leak test)
// are built on it.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const serviceScript = fileURLToPath(new URL('../../examples/service.mjs', import.meta.url));

/** The two versions of the bench's service (this folder). */
export const SERVICES = {
  nofail: fileURLToPath(new URL('./nofail.mjs', import.meta.url)),
  baseline: fileURLToPath(new URL('./baseline.mjs', import.meta.url)),
};

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

/** Starts a service (default: the example) in a child process; resolves once it listens. */
export function startService(args = [], script = serviceScript, nodeArgs = []) {
  const child = spawn(
    process.execPath,
    ['--expose-gc', ...nodeArgs, '--import', `data:text/javascript,${encodeURIComponent(HEAP_PROBE)}`, script, '--port', '0', ...args],
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

/** A process's CPU time so far (user + system), ms, from /proc/<pid>/stat. */
export function cpuMs(pid) {
  const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ').map(Number);
  return (f[11] + f[12]) * 10; // utime + stime, in USER_HZ (100) ticks
}

/** Busy CPU time of the whole machine so far, ms (/proc/stat): minus ours and the server's, what others used. */
export function machineBusyMs() {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (cpu.reduce((a, b) => a + b, 0) - cpu[3] - (cpu[4] ?? 0)) * 10;
}

const sha = (s) => createHash('sha256').update(s).digest('hex');

/**
 * The body of each key: `${key}:` and then a slice of one shared random
 * printable string (printable: autocannon hands response bodies over as
 * strings), of a length drawn once per key. Every PUT of a key sends the
 * same bytes, so a GET has exactly one right answer: the key's sha256,
 * computed once. A body is built per request as a rope of two strings, so
 * the load generator spends its CPU on neither random bytes nor hashing.
 */
const ALPHABET = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
let shared = '';
function sharedText(n) {
  if (shared.length < n) {
    const b = randomBytes(n);
    for (let i = 0; i < n; i++) b[i] = ALPHABET[b[i] & 63];
    shared = b.toString('latin1');
  }
  return shared;
}
function keyBodies(keys, minBody, maxBody) {
  const text = sharedText(maxBody);
  // Lengths from a fixed seed, not the request mix's: a warm-up and the run
  // after it (different mixes) agree on every key's value.
  let x = 0x2545f491;
  const lengths = Array.from({ length: keys }, () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return minBody + Math.floor((x / 2 ** 32) * (maxBody - minBody + 1));
  });
  const shas = new Array(keys);
  const body = (k) => {
    const head = `k${k}:`;
    const n = lengths[k];
    return n <= head.length ? head.slice(0, n) : head + text.slice(0, n - head.length);
  };
  const digest = (k) => (shas[k] ??= sha(Buffer.from(body(k), 'latin1')));
  return { body, digest };
}

/**
 * Runs the load: `connections` clients, each request a PUT (putShare),
 * else an echo (echoShare), else a GET, of keys 0..keys-1 whose bodies are
 * minBody..maxBody bytes (keyBodies); `requests` of them, or as many as
 * `seconds` allow. Returns the tallies, autocannon's result, the server's
 * RSS samples, and its CPU time over the load.
 */
export async function drive({ url, pid, seconds = 5, requests, connections = 32, keys = 2000, minBody = 1024, maxBody = 96 * 1024, putShare = 0.4, echoShare = 0.2, seed = 1 }) {
  const tally = { statuses: {}, corrupt: [], missingRetryAfter: 0, checked: 0, gets: 0, getHits: 0 };
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
  const kb = keyBodies(keys, minBody, maxBody);
  const rss = [];
  const sampler = setInterval(() => {
    try {
      rss.push(rssKiB(pid));
    } catch {}
  }, 100);

  const onResponse = (status, body, context, headers) => {
    note(status);
    if (status === 503 && headers['retry-after'] === undefined) tally.missingRetryAfter++;
    if (context.op === 'get') {
      tally.gets++;
      if (status === 200) tally.getHits++;
    }
    if (status !== 200) return;
    tally.checked++;
    const want = kb.digest(context.k);
    const got = sha(Buffer.from(body, 'latin1'));
    if (got !== headers['x-checksum']) tally.corrupt.push(`${context.op} k${context.k}: body and x-checksum differ (${body.length} bytes)`);
    else if (got !== want) tally.corrupt.push(`${context.op} k${context.k}: not the key's value (${body.slice(0, 16)})`);
  };
  const setupRequest = (req, context) => {
    const r = rand();
    const k = Math.floor(rand() * keys);
    context.k = k;
    if (r < putShare) {
      context.op = 'put';
      return { ...req, method: 'PUT', path: `/kv/k${k}`, body: kb.body(k), headers: { 'content-type': 'application/octet-stream', 'x-checksum': kb.digest(k) } };
    }
    if (r < putShare + echoShare) {
      context.op = 'echo';
      return { ...req, method: 'POST', path: '/echo', body: kb.body(k), headers: { 'content-type': 'application/octet-stream' } };
    }
    context.op = 'get';
    return { ...req, method: 'GET', path: `/kv/k${k}`, body: undefined, headers: {} };
  };

  const cpu0 = cpuMs(pid);
  const busy0 = machineBusyMs();
  const self0 = process.cpuUsage();
  const result = await autocannon({
    url,
    connections,
    // A number of requests (the same work on any machine) or a duration.
    ...(requests !== undefined ? { amount: requests } : { duration: seconds }),
    timeout: 10,
    requests: [{ setupRequest, onResponse }],
  });
  const serverCpuMs = cpuMs(pid) - cpu0;
  const self = process.cpuUsage(self0);
  // What the rest of the machine used meanwhile, in cores: on a 2-core box
  // anything else running makes both variants' numbers meaningless.
  const otherCores = Math.max(0, machineBusyMs() - busy0 - serverCpuMs - (self.user + self.system) / 1000) / (result.duration * 1000);
  clearInterval(sampler);
  return { tally, result, rssKiB: rss, serverCpuMs, otherCores };
}

export async function getJson(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return r.json();
}

