// The service load test: a key-value service driven on loopback, two
// phases, each run against nofail and against the baseline a Node user
// writes today (bench/service/: the same Fastify service on a nofail pool,
// and on Buffers + lru-cache + @fastify/under-pressure), alternating, in
// the same run:
//
//   normal    autocannon, PUT/GET/echo of bodies 1-256 KiB on 32
//             connections: req/s, p50/p99 latency, server CPU (and GC) per
//             request, RSS; every response checked end to end (sha256);
//   overload  160 clients each uploading 1 MiB slowly (1.6 s per body) for
//             15 s, ten times the memory: RSS growth, bodies stored, what
//             every client was answered (2xx, 503 with Retry-After, 413 —
//             or an error: EPIPE, reset, timeout), and how much of the
//             memory the other tenant leaves was put to work (the pages
//             admitted bodies held, averaged over the phase).
//
// `npm run bench:service` runs it (main() below); the tables it prints are
// the README's. bench/service/leak.mjs is the example service's leak test.
import { fileURLToPath } from 'node:url';
import { waitQuiet } from './lib/machine.mjs';
import { cpuMs, drive, getJson, rssKiB, SERVICES, startService } from './service/drive.mjs';
import { overload } from './service/overload.mjs';

// ---------------------------------------------------------------------------
// The comparison: nofail against the baseline, normal load and overload.

const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};

/** One normal-load run of one variant: a warm-up, then `seconds` of autocannon. */
export async function runNormal({ variant, seconds = 20, connections = 32, memory = '16MiB', hog = '4MiB', keys = 500, minBody = 1024, maxBody = 256 * 1024, warmupRequests = 500 }) {
  const svc = await startService(['--memory', memory, '--hog', hog], SERVICES[variant]);
  try {
    const load = { url: svc.url, pid: svc.pid, connections, keys, minBody, maxBody };
    await drive({ ...load, requests: warmupRequests, seed: 2 });
    const rssStart = rssKiB(svc.pid);
    const gc0 = (await getJson(`${svc.url}/debug/stats`)).gcMs;
    await fetch(`${svc.url}/debug/reset-loop-delay`, { method: 'POST' });
    const { tally, result, rssKiB: rss, serverCpuMs, otherCores } = await drive({ ...load, seconds, seed: 3 });
    const requests = Object.values(tally.statuses).reduce((a, b) => a + b, 0);
    const server = await getJson(`${svc.url}/debug/stats`);
    return {
      variant,
      requests,
      rps: result.requests.average,
      p50: result.latency.p50,
      p99: result.latency.p99,
      cpuUsPerRequest: (serverCpuMs * 1000) / Math.max(1, requests),
      gcUsPerRequest: ((server.gcMs - gc0) * 1000) / Math.max(1, requests),
      // The share of GETs that found their value: a cache with more room serves more bytes.
      hitRate: tally.getHits / Math.max(1, tally.gets),
      rssStartMiB: rssStart / 1024,
      rssPeakMiB: Math.max(rssStart, ...rss) / 1024,
      statuses: tally.statuses,
      checked: tally.checked,
      corrupt: tally.corrupt,
      missingRetryAfter: tally.missingRetryAfter,
      errors: result.errors,
      timeouts: result.timeouts,
      otherCores,
      server,
    };
  } finally {
    await svc.stop();
  }
}

/** One overload run of one variant (bench/service/overload.mjs), with the server's RSS and, for nofail, its pages. */
export async function runOverload({ variant, seconds = 15, clients = 160, bodyBytes = 1 << 20, uploadMs = 1600, memory = '16MiB', hog = '4MiB', finishUploads = false }) {
  const svc = await startService(['--memory', memory, '--hog', hog], SERVICES[variant]);
  try {
    const rssStart = rssKiB(svc.pid);
    let rssPeak = rssStart;
    const sampler = setInterval(() => {
      try {
        rssPeak = Math.max(rssPeak, rssKiB(svc.pid));
      } catch {}
    }, 50);
    let window = null;
    const cpu0 = cpuMs(svc.pid);
    const t = await overload({
      url: svc.url,
      clients,
      bodyBytes,
      uploadMs,
      seconds,
      finishUploads,
      onPhase: (phase) => {
        if (phase === 'start') fetch(`${svc.url}/debug/window`, { method: 'POST' }).catch(() => {});
        else window = getJson(`${svc.url}/debug/window`);
      },
    });
    clearInterval(sampler);
    const serverCpuMs = cpuMs(svc.pid) - cpu0;
    const bodies = await window;
    const server = await getJson(`${svc.url}/debug/stats`);
    const errors = Object.values(t.errors).reduce((a, b) => a + b, 0);
    return {
      variant,
      ...t,
      clientErrors: errors,
      rssStartMiB: rssStart / 1024,
      rssGrowthMiB: (rssPeak - rssStart) / 1024,
      serverCpuMs,
      // Pages admitted bodies held, averaged over the phase, against what the other tenant leaves.
      bodyPagesAvg: bodies.avg,
      budgetUse: variant === 'nofail' ? bodies.avg / server.availablePages : NaN,
      server,
    };
  } finally {
    await svc.stop();
  }
}

/** What the overload must hold for every variant: every client answered (the budget-use and RSS targets are judged apart). */
export function checkOverload(r) {
  const p = [];
  const bad = Object.keys(r.statuses).filter((s) => !['201', '503', '413'].includes(s));
  if (r.clientErrors) p.push(`${r.clientErrors} clients without an answer ${JSON.stringify(r.errors)}`);
  if (bad.length) p.push(`unexpected statuses ${JSON.stringify(r.statuses)}`);
  if (r.missingRetryAfter) p.push(`${r.missingRetryAfter} 503s without Retry-After`);
  if (r.connectionClose) p.push(`${r.connectionClose} answers with Connection: close`);
  for (const [phase, reads] of [['during', r.reads], ['after', r.readsAfter]]) {
    if (reads.corrupt) p.push(`${reads.corrupt} corrupted reads ${phase} the overload`);
    if (reads.errors) p.push(`${reads.errors} failed reads ${phase} the overload`);
  }
  return p;
}

const pad = (v, n) => String(v).padStart(n);
const f0 = (x) => (Number.isFinite(x) ? x.toFixed(0) : '–');
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '–');

export function formatNormal(r) {
  return (
    `${r.variant.padEnd(8)} ${pad(f0(r.rps), 6)} req/s  p50 ${pad(r.p50, 4)} ms  p99 ${pad(r.p99, 4)} ms  CPU ${pad(f0(r.cpuUsPerRequest), 5)} µs/req (GC ${f0(r.gcUsPerRequest)})  ` +
    `GET hits ${(r.hitRate * 100).toFixed(0)} %  loop delay p99 ${f1(r.server.loopDelayMs.p99)} max ${f1(r.server.loopDelayMs.max)} ms  RSS ${f0(r.rssStartMiB)} -> ${f0(r.rssPeakMiB)} MiB  checked ${r.checked} corrupt ${r.corrupt.length}  errors ${r.errors} timeouts ${r.timeouts}  ` +
    `other load ${r.otherCores.toFixed(2)} cores  statuses ${JSON.stringify(r.statuses)}`
  );
}

export function formatOverload(r) {
  const shed = r.server.shed?.shed;
  return (
    `${r.variant.padEnd(8)} RSS +${f0(r.rssGrowthMiB)} MiB (from ${f0(r.rssStartMiB)})  stored ${r.stored} of ${r.requests} requests  ` +
    `${(r.storedBytes / 2 ** 20 / r.seconds).toFixed(1)} MiB/s  client errors ${r.clientErrors} ${JSON.stringify(r.errors)}  statuses ${JSON.stringify(r.statuses)}  ` +
    `early answers ${r.early}  Connection: close ${r.connectionClose}  budget use ${Number.isFinite(r.budgetUse) ? `${(r.budgetUse * 100).toFixed(0)} %` : '–'}  ` +
    `reads during ${r.reads.checked} ok/${JSON.stringify(r.reads.statuses)}  after ${r.readsAfter.checked} ok/${JSON.stringify(r.readsAfter.statuses)}` +
    (shed ? `  shed ${JSON.stringify(shed)} at once ${r.server.shed.admittedAtOnce} cut off ${r.server.shed.cutOff}` : '')
  );
}

/** The targets of issue 14, judged on the medians; each returns [ok, text]. */
export function judge(normal, over) {
  const n = (v) => median(normal[v].map((r) => r.rps));
  const p99 = (v) => median(normal[v].map((r) => r.p99));
  const rss = (v) => median(over[v].map((r) => r.rssGrowthMiB));
  const errs = over.nofail.reduce((a, r) => a + r.clientErrors, 0);
  const use = median(over.nofail.map((r) => r.budgetUse));
  const out = [];
  if (normal.nofail.length && normal.baseline.length) {
    out.push([n('nofail') >= n('baseline'), `normal: req/s ${f0(n('nofail'))} vs ${f0(n('baseline'))} (${(n('nofail') / n('baseline')).toFixed(2)}x, target >= 1.00x)`]);
    out.push([p99('nofail') <= p99('baseline'), `normal: p99 ${p99('nofail')} ms vs ${p99('baseline')} ms (target <=)`]);
  }
  if (over.nofail.length) {
    const base = over.baseline.length ? rss('baseline') : Infinity;
    out.push([rss('nofail') <= 96 && rss('nofail') <= base / 2, `overload: RSS growth ${f1(rss('nofail'))} MiB vs ${f1(base)} MiB (target <= 96 and <= half)`]);
    out.push([errs === 0, `overload: client errors ${errs} (target 0)`]);
    out.push([use >= 0.6, `overload: budget use ${(use * 100).toFixed(0)} % (target >= 60 %)`]);
  }
  return out;
}

async function main() {
  const { parseArgs } = await import('node:util');
  const { values } = parseArgs({
    options: {
      phases: { type: 'string', default: 'normal,overload' },
      variants: { type: 'string', default: 'nofail,baseline' },
      rounds: { type: 'string', default: '2' },
      seconds: { type: 'string', default: '20' },
      connections: { type: 'string', default: '32' },
      memory: { type: 'string', default: '16MiB' },
      hog: { type: 'string', default: '4MiB' },
      'max-body': { type: 'string', default: String(256 * 1024) },
      keys: { type: 'string', default: '500' },
      'overload-seconds': { type: 'string', default: '15' },
      clients: { type: 'string', default: '160' },
      'finish-uploads': { type: 'boolean', default: false },
      // Before each run, wait up to this long for other processes to go
      // (nearly) idle: on a shared 2-core box a neighbour's build halves
      // one variant's numbers and not the other's.
      'wait-quiet': { type: 'string', default: '30' },
      json: { type: 'string' },
    },
  });
  const variants = values.variants.split(',');
  const phases = values.phases.split(',');
  const rounds = Number(values.rounds);
  const memory = values.memory;
  const hog = values.hog;
  console.log(
    `service load: nofail (bench/service/nofail.mjs) vs baseline (bench/service/baseline.mjs), memory ${memory} with ${hog} held by another tenant, ` +
      `${rounds} rounds alternating, node ${process.version}\n` +
      `  normal:   ${values.seconds} s, ${values.connections} connections, PUT 40 % / echo 20 % / GET 40 %, bodies 1 KiB..${Math.round(Number(values['max-body']) / 1024)} KiB, ${values.keys} keys\n` +
      `  overload: ${values['overload-seconds']} s, ${values.clients} clients each uploading 1 MiB over 1.6 s${values['finish-uploads'] ? ' (sending every byte before reading the answer)' : ''}`,
  );
  const normal = Object.fromEntries(variants.map((v) => [v, []]));
  const over = Object.fromEntries(variants.map((v) => [v, []]));
  let bad = 0;
  const quiet = async () => {
    const ms = Number(values['wait-quiet']) * 1000;
    if (ms > 0) await waitQuiet({ below: 0.25, maxMs: ms });
  };
  for (let round = 0; round < rounds; round++) {
    // Alternate which variant goes first, so that neither always runs on a warmer (or busier) machine.
    const order = round % 2 === 0 ? variants : [...variants].reverse();
    if (phases.includes('normal')) {
      for (const variant of order) {
        await quiet();
        const r = await runNormal({ variant, seconds: Number(values.seconds), connections: Number(values.connections), memory, hog, keys: Number(values.keys), maxBody: Number(values['max-body']) });
        normal[variant].push(r);
        console.log(`normal   round ${round + 1}  ${formatNormal(r)}`);
        const problems = [];
        if (r.corrupt.length) problems.push(`${r.corrupt.length} corrupted responses (${r.corrupt.slice(0, 3).join(' | ')})`);
        if (r.errors || r.timeouts) problems.push(`${r.errors} socket errors, ${r.timeouts} timeouts`);
        if (r.missingRetryAfter) problems.push(`${r.missingRetryAfter} 503s without Retry-After`);
        if (r.otherCores > 0.3) console.log(`  (other processes used ${r.otherCores.toFixed(2)} cores meanwhile: this round is noisy)`);
        if (problems.length) {
          bad++;
          console.log(`  !! FAILED: ${problems.join('; ')}`);
        }
      }
    }
    if (phases.includes('overload')) {
      for (const variant of order) {
        await quiet();
        const r = await runOverload({ variant, seconds: Number(values['overload-seconds']), clients: Number(values.clients), memory, hog, finishUploads: values['finish-uploads'] });
        over[variant].push(r);
        console.log(`overload round ${round + 1}  ${formatOverload(r)}`);
        const problems = checkOverload(r);
        if (problems.length && variant === 'nofail') {
          bad++;
          console.log(`  !! FAILED: ${problems.join('; ')}`);
        } else if (problems.length) console.log(`  (baseline: ${problems.join('; ')})`);
      }
    }
  }
  // The tables the README shows: medians of the rounds.
  if (phases.includes('normal')) {
    console.log(`\nnormal load, medians of ${rounds}:\n| | req/s | p50 / p99 latency | server CPU per request (of it GC) | GET hits | RSS start → peak | 503s | other load |\n| --- | --- | --- | --- | --- | --- | --- | --- |`);
    for (const v of variants) {
      const rs = normal[v];
      const share503 = median(rs.map((r) => (r.statuses[503] ?? 0) / Math.max(1, r.requests)));
      console.log(
        `| ${v} | ${f0(median(rs.map((r) => r.rps)))} | ${median(rs.map((r) => r.p50))} / ${median(rs.map((r) => r.p99))} ms | ${f0(median(rs.map((r) => r.cpuUsPerRequest)))} µs (${f0(median(rs.map((r) => r.gcUsPerRequest)))} µs) | ${f0(median(rs.map((r) => r.hitRate * 100)))} % | ` +
          `${f0(median(rs.map((r) => r.rssStartMiB)))} → ${f0(median(rs.map((r) => r.rssPeakMiB)))} MiB | ${(share503 * 100).toFixed(2)} % | ${median(rs.map((r) => r.otherCores)).toFixed(2)} cores |`,
      );
    }
  }
  if (phases.includes('overload')) {
    console.log(`\noverload, medians of ${rounds}:\n| | server RSS growth | bodies stored | client errors | answers | Connection: close | budget use | reads after the overload |\n| --- | --- | --- | --- | --- | --- | --- | --- |`);
    for (const v of variants) {
      const rs = over[v];
      const st = (code) => f0(median(rs.map((r) => r.statuses[code] ?? 0)));
      console.log(
        `| ${v} | +${f0(median(rs.map((r) => r.rssGrowthMiB)))} MiB | ${f0(median(rs.map((r) => r.stored)))} of ${f0(median(rs.map((r) => r.requests)))} requests ` +
          `(${f1(median(rs.map((r) => r.storedBytes / 2 ** 20 / r.seconds)))} MiB/s) | ${f0(median(rs.map((r) => r.clientErrors)))} | ` +
          `201: ${st(201)}, 503: ${st(503)}, 413: ${st(413)} | ${f0(median(rs.map((r) => r.connectionClose)))} | ` +
          `${v === 'nofail' ? `${f0(median(rs.map((r) => r.budgetUse * 100)))} %` : '–'} | ${f0(median(rs.map((r) => r.readsAfter.checked)))} ok, 503: ${f0(median(rs.map((r) => r.readsAfter.statuses[503] ?? 0)))} |`,
      );
    }
  }
  if (normal.nofail && normal.baseline) {
    console.log('\ntargets (issue 14):');
    for (const [ok, text] of judge(normal, over)) console.log(`  ${ok ? 'pass' : 'MISS'}  ${text}`);
  }
  if (values.json) {
    const { writeFileSync } = await import('node:fs');
    const strip = (r) => ({ ...r, corrupt: r.corrupt?.length });
    writeFileSync(values.json, JSON.stringify({ normal: Object.fromEntries(Object.entries(normal).map(([k, v]) => [k, v.map(strip)])), overload: over }, null, 1));
  }
  process.exitCode = bad ? 1 : 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
