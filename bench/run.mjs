#!/usr/bin/env node
// `npm run bench` (full) and `npm run bench -- --quick` (CI-sized).
// Every case runs in a fresh `node` process (bench/cases/*.mjs, one JSON
// line each); the peers are measured in the same run. It prints the
// patterns × implementations table (ns per page, and how many times faster
// nofail is than Buffer.allocUnsafe and @thi.ng/malloc), the worker scaling,
// the other cases, each target with pass/MISS, then the machine. The results
// also go to .bench-out/results.json (--out to change).
// Options: --quick, --only <substring of a case id>, --out <file>,
// --repeat <n>: run the list n times, interleaved, keep each case's median;
// --wait-quiet <seconds>: before each case, wait up to that long for other
// processes to go idle (for shared machines).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { runCase } from './lib/child.mjs';
import { fmtNs, fmtRate, fmtRatio, fmtSpread, fmtValue, table } from './lib/format.mjs';
import { buildWarnings, cpuProbe, gitState, machine, machineLine, otherLoad, waitQuiet } from './lib/machine.mjs';
import { parseArgs } from './lib/measure.mjs';
import { HOT_ONLY, PEERS } from './lib/peers.mjs';
import { evaluateTargets, nsPerPage } from './lib/targets.mjs';

const opts = parseArgs();
const quick = opts.quick;
const out = resolve(opts.out ?? '.bench-out/results.json');

// The single-thread patterns (cases/pattern.mjs, lib/patterns.mjs).
const PATTERNS = [
  ['hot', ['--pattern', 'hot'], 'hot page (1 recycled, 32 held)'],
  ...[64, 512, 4096].flatMap((n) =>
    ['lifo', 'fifo'].map((free) => [`burst${n}-${free}`, ['--pattern', 'burst', '--n', String(n), '--free', free], `burst of ${n} held, freed ${free.toUpperCase()}`]),
  ),
  ['random1k', ['--pattern', 'random', '--live', '1000'], 'random lifetimes, 1k live pages, orders 0-3'],
  ['random100k', ['--pattern', 'random', '--live', '100000'], 'random lifetimes, 100k live pages, orders 0-3'],
];
// The shared-state patterns (cases/workers.mjs, lib/worker-loops.mjs) and the worker counts they run at.
// --quick leaves out 4 workers (the targets need 1 and 2).
const COUNTS = quick ? [1, 2] : [1, 2, 4];
const WORKER_PATTERNS = [
  ['working-set', ['--pattern', 'working-set'], 'working set 4k..20k pages, random frees', COUNTS],
  ['handoff-ring', ['--pattern', 'handoff', '--role', 'ring'], 'handoff, ring of workers', COUNTS],
  ['handoff-split', ['--pattern', 'handoff', '--role', 'split'], 'producer -> consumer', [2]],
];
const WORKER_IMPLS = ['nofail', '@thi.ng/malloc', 'naive mutex pool', 'Buffer.allocUnsafe'];
const COLUMNS = [...PEERS, 'naive mutex pool'];
// Short column names for the table (the legend under it spells them out).
const SHORT = {
  nofail: 'nofail',
  '@thi.ng/malloc': 'thi.ng',
  'JS free list': 'free list',
  'Buffer.allocUnsafe': 'allocUnsafe',
  'Buffer.allocUnsafeSlow': 'allocUnsafeSlow',
  'new ArrayBuffer': 'ArrayBuffer',
  'naive mutex pool': 'naive',
};

// Which implementations run a pattern. --quick runs the two Buffer
// baselines that are neither the target's reference nor much different
// from it (allocUnsafeSlow, new ArrayBuffer) on a few patterns only.
const implsOf = (key) => {
  if (key === 'hot') return [...PEERS, ...HOT_ONLY];
  if (!quick || ['burst512-lifo', 'burst512-fifo', 'random1k'].includes(key)) return PEERS;
  return PEERS.filter((p) => p !== 'Buffer.allocUnsafeSlow' && p !== 'new ArrayBuffer');
};

// { id, file, args }: every case of the run.
const CASES = [
  ...PATTERNS.flatMap(([key, args]) => implsOf(key).map((impl) => ({ id: `pattern/${key}/${impl}`, file: 'pattern.mjs', args: [...args, '--impl', impl] }))),
  ...WORKER_PATTERNS.flatMap(([key, args, , counts]) =>
    WORKER_IMPLS.flatMap((impl) => counts.map((w) => ({ id: `workers/${key}/${impl}/${w}`, file: 'workers.mjs', args: [...args, '--impl', impl, '--workers', String(w)] }))),
  ),
  ...COUNTS.map((w) => ({ id: `workers/compute/${w}`, file: 'workers.mjs', args: ['--impl', 'compute', '--workers', String(w)] })),
  { id: 'bulk/allocBulk64', file: 'bulk.mjs', args: [] },
  { id: 'reserve/take+release', file: 'reserve.mjs', args: [] },
  { id: 'wakeup/free-to-waiter', file: 'wakeup.mjs', args: [] },
  { id: 'native/core_bench', file: 'native-core.mjs', args: [] },
  { id: 'meta/idle-pool-rss', file: 'meta-rss.mjs', args: [] },
  { id: 'pool-size/64MiB-vs-64GiB', file: 'pool-size.mjs', args: ['--sizes', '64MiB,64GiB'] },
  { id: 'working-set-cost/one-thread', file: 'working-set-cost.mjs', args: [] },
].filter(({ id }) => !opts.only || id.includes(opts.only));

if (CASES.length === 0) {
  console.error(`no case id contains "${opts.only}"`);
  process.exit(2);
}
const started = Date.now();
const m = machine();
const warnings = buildWarnings();
for (const w of warnings) console.error(`warning: ${w}`);
console.error(`nofail bench (${quick ? 'quick' : 'full'}): ${CASES.length} cases, each in a fresh process`);

// With --repeat N the whole list runs N times, interleaved, and each case
// keeps the run with the median result (its other results under `repeats`).
const repeat = Math.max(1, Number(opts.repeat ?? 1));
const runs = Object.fromEntries(CASES.map(({ id }) => [id, []]));
cpuProbe();  // warms the probe up
const runLoad = otherLoad();
for (let k = 0; k < repeat; k++) {
  for (const [i, { id, file, args }] of CASES.entries()) {
    if (opts['wait-quiet']) await waitQuiet({ maxMs: 1000 * Number(opts['wait-quiet']) });
    process.stderr.write(`  [${i + 1}/${CASES.length}] ${id}${repeat > 1 ? ` (${k + 1}/${repeat})` : ''} ... `);
    const probeBefore = cpuProbe();
    const caseLoad = otherLoad();
    const r = await runCase(file, args, { quick });
    r.otherLoad = Math.round(caseLoad() * 100) / 100;
    r.cpuProbe = [probeBefore, cpuProbe()];
    runs[id].push(r);
    process.stderr.write(`${r.error ? `FAILED: ${r.error}` : r.skipped ? `skipped: ${r.skipped}` : r.failed ? `partly failed: ${r.failed}` : 'done'} (${r.seconds.toFixed(1)} s)\n`);
  }
}
const results = {};
for (const [id, list] of Object.entries(runs)) {
  // Worker cases report a rate (higher is better), the others a time: the
  // median run is the same either way.
  const okRuns = list.filter((r) => !r.error && !r.skipped && r.median !== undefined).sort((a, b) => a.median - b.median);
  results[id] = okRuns.length ? { ...okRuns[(okRuns.length - 1) >> 1], repeats: list.length > 1 ? okRuns.map((r) => r.median) : undefined } : list[0];
}

// What may have disturbed a case: other processes' CPU use during it (in
// cores), and a CPU probe just before or after it that was more than 20% off
// the run's median (a host slowing the VM down shows only there).
const probes = Object.values(results).flatMap((r) => r.cpuProbe).sort((a, b) => a - b);
const probeMedian = probes[Math.floor(probes.length / 2)];
const noise = (r) => {
  const why = [];
  if (!r?.cpuProbe) return '';
  if (r.otherLoad >= 0.15) why.push(`load ${r.otherLoad.toFixed(2)}`);
  const off = Math.max(...r.cpuProbe.map((p) => Math.abs(p / probeMedian - 1)));
  if (off > 0.2) why.push(`cpu probe ${r.cpuProbe.map((p) => `${p > probeMedian ? '+' : ''}${Math.round(100 * (p / probeMedian - 1))}%`).join('/')}`);
  return why.join(', ');
};
const noisy = [];
const status = (id) => {
  const r = results[id];
  if (!r) return '';
  if (r.error) return 'FAILED';
  if (r.skipped) return 'skipped';
  return undefined;
};
/** A cell of ns per page; `*` marks a case another process or the host may have disturbed. */
const cell = (id) => {
  const s = status(id);
  if (s !== undefined) return s;
  const why = noise(results[id]);
  if (why) noisy.push(`${id}: ${why}`);
  return `${fmtNs(nsPerPage(results[id]))}${why ? '*' : ''}`;
};
const times = (id, peer) => {
  const mine = nsPerPage(results[id('nofail')]);
  const theirs = nsPerPage(results[id(peer)]);
  return mine && theirs ? fmtRatio(theirs / mine) : '';
};
const zoneCell = (r) => {
  const z = r?.zonePagesPerOp ?? r?.zonePagesPerPage;
  return z === undefined ? '' : z.toFixed(z >= 0.1 ? 2 : 3);
};

const patternRows = [];
for (const [key, , label] of PATTERNS) {
  const id = (impl) => `pattern/${key}/${impl}`;
  if (!COLUMNS.some((c) => results[id(c)])) continue;
  patternRows.push([label, ...COLUMNS.map((c) => cell(id(c))), times(id, 'Buffer.allocUnsafe'), times(id, '@thi.ng/malloc'), zoneCell(results[id('nofail')])]);
}
for (const [key, , label, counts] of WORKER_PATTERNS) {
  for (const w of counts) {
    const id = (impl) => `workers/${key}/${impl}/${w}`;
    if (!COLUMNS.some((c) => results[id(c)])) continue;
    patternRows.push([`${label}, ${w} worker${w > 1 ? 's' : ''}`, ...COLUMNS.map((c) => cell(id(c))), times(id, 'Buffer.allocUnsafe'), times(id, '@thi.ng/malloc'), zoneCell(results[id('nofail')])]);
  }
}

// Scaling: aggregate pages/s per worker count, and its ratio to 1 worker.
const scalingRows = [];
for (const [key, , label, counts] of [...WORKER_PATTERNS, ['compute', [], 'pure compute (the ceiling)', COUNTS]]) {
  if (counts.length < 2) continue;
  const impls = key === 'compute' ? ['compute'] : WORKER_IMPLS;
  for (const impl of impls) {
    const id = (w) => (key === 'compute' ? `workers/compute/${w}` : `workers/${key}/${impl}/${w}`);
    if (!counts.some((w) => results[id(w)])) continue;
    const one = results[id(counts[0])];
    scalingRows.push([
      key === 'compute' ? label : `${label}: ${impl}`,
      ...counts.map((w) => {
        const r = results[id(w)];
        const s = status(id(w));
        if (s !== undefined) return s;
        const ratio = one && !status(id(counts[0])) && w !== counts[0] ? ` (${fmtRatio(r.median / one.median)})` : '';
        const why = noise(r);
        if (why && !noisy.some((n) => n.startsWith(`${id(w)}:`))) noisy.push(`${id(w)}: ${why}`);
        return `${fmtRate(r.median)}${ratio}${why ? '*' : ''}`;
      }),
    ]);
  }
}

const otherRows = [];
const other = (id, label, value, spread = '', extra = '') => {
  const r = results[id];
  if (!r) return;
  const s = status(id);
  if (s !== undefined) otherRows.push([label, s, '', (r.error ?? r.skipped).slice(0, 120)]);
  else otherRows.push([label, value(r), spread, extra, noise(r)]);
};
other('pattern/hot/nofail, no bytes', 'hot page, nofail, bytes never touched', (r) => fmtNs(r.median), results['pattern/hot/nofail, no bytes'] && fmtSpread(results['pattern/hot/nofail, no bytes']), 'the view costs the difference to the hot row');
other('bulk/allocBulk64', 'allocBulk(64) + write + freeBulk, per page', (r) => fmtNs(r.median), results['bulk/allocBulk64'] && fmtSpread(results['bulk/allocBulk64']));
if (results['bulk/allocBulk64']?.allocBulk) {
  const b = results['bulk/allocBulk64'];
  otherRows.push(['  of which allocBulk(64), per page', fmtNs(b.allocBulk.median), fmtSpread({ unit: 'ns/op', ...b.allocBulk }), 'no bytes touched']);
  otherRows.push(['  of which freeBulk, per page', fmtNs(b.freeBulk.median), fmtSpread({ unit: 'ns/op', ...b.freeBulk }), '']);
}
other('reserve/take+release', 'reservation take+release (memory plentiful)', (r) => fmtNs(r.median), results['reserve/take+release'] && fmtSpread(results['reserve/take+release']));
other('wakeup/free-to-waiter', 'blocked worker woken after a free', (r) => `p50 ${r.median} µs`, '', results['wakeup/free-to-waiter'] && `p99 ${results['wakeup/free-to-waiter'].p99} µs, max ${results['wakeup/free-to-waiter'].max} µs`);
if (results['native/core_bench'] && !status('native/core_bench')) {
  for (const x of results['native/core_bench'].results) otherRows.push([`native: ${x.case}`, fmtNs(x.ns), '', '(C++, no JS)', noise(results['native/core_bench'])]);
} else other('native/core_bench', 'native core (C++, no JS)', () => '');
other('meta/idle-pool-rss', 'idle 1 GiB pool: RSS overhead', (r) => fmtValue(r), `${((results['meta/idle-pool-rss']?.overheadBytes ?? 0) / 1024).toFixed(0)} KiB`, results['meta/idle-pool-rss']?.bytesPerPage !== undefined ? `${results['meta/idle-pool-rss'].bytesPerPage.toFixed(2)} B/page` : '');
{
  const id = 'pool-size/64MiB-vs-64GiB';
  const r = results[id];
  if (r && (r.error || r.skipped)) otherRows.push(['pool of 64 MiB vs 64 GiB', status(id), '', (r.error ?? r.skipped).slice(0, 140)]);
  else if (r) {
    for (const [size, x] of Object.entries(r.sizes)) {
      const v = (k) => (x[k] ? fmtNs(x[k].median) : 'failed');
      otherRows.push([`pool of ${size}: hot page / no bytes`, `${v('hot')} / ${v('hotNoBytes')}`, '', `created in ${x.createMs.toFixed(1)} ms`, noise(r)]);
      otherRows.push([`pool of ${size}: zone path (pcp off) / no bytes`, `${v('zone')} / ${v('zoneNoBytes')}`, '', `metadata ${(x.metaBytesPerGiB / 2 ** 20).toFixed(2)} MiB per GiB (${(x.metaBytes / 2 ** 20).toFixed(1)} MiB)`]);
    }
    if (r.failed) otherRows.push(['  failed', '', '', r.failed.slice(0, 160)]);
  }
}

{
  const id = 'working-set-cost/one-thread';
  const r = results[id];
  if (r && (r.error || r.skipped)) otherRows.push(['working set, one thread: where the time goes', status(id), '', (r.error ?? r.skipped).slice(0, 140)]);
  else if (r) {
    const v = (k) => fmtNs(r.variants[k].median);
    otherRows.push(['working set, one thread: bytes / no bytes', `${v('bytes')} / ${v('no bytes')}`, '', 'the allocator alone is the second', noise(r)]);
    otherRows.push(['  byte via one region view / hugepages', `${v('region view')} / ${v('hugepages')}`, '', 'no per-page view / fewer TLB misses']);
    otherRows.push(['  the same region through a JS free list', v('free list'), '', 'its pages recycled LIFO, no allocator']);
  }
}

const targets = evaluateTargets(results);
const elsewhere = runLoad();
if (elsewhere >= 0.15) {
  warnings.push(`other processes used ${elsewhere.toFixed(2)} cores on average during the run (cells marked *): rerun on a quiet machine`);
}
if (probes.at(-1) > 1.3 * probes[0]) {
  warnings.push(`the CPU's speed changed during the run (probe ${probes[0].toFixed(2)} .. ${probes.at(-1).toFixed(2)} ns/step): compare ratios, not absolute numbers`);
}
const seconds = (Date.now() - started) / 1000;
const git = gitState();
console.log(`\nnofail bench (${quick ? 'quick' : 'full'}) — ${new Date(started).toISOString()}, git ${git.commit}${git.dirty ? ' (with local changes)' : ''}\n`);
if (patternRows.length) {
  console.log('Patterns: ns per page (alloc + one byte written + free; random: per allocation of 1-8 pages; workers: wall time per page, all workers together)');
  console.log(table(['pattern', ...COLUMNS.map((c) => SHORT[c]), 'x allocUnsafe', 'x thi.ng', 'zone'], patternRows));
  console.log(
    'thi.ng: @thi.ng/malloc MemPool on a SharedArrayBuffer (a lock around each call in workers); free list: pre-made Uint8Arrays, the ceiling;\n' +
      'allocUnsafe, allocUnsafeSlow, ArrayBuffer: Buffer.allocUnsafe(4096), Buffer.allocUnsafeSlow(4096), new ArrayBuffer(4096), the GC frees;\n' +
      'naive: a mutex-guarded free list through Node-API; x allocUnsafe, x thi.ng: how many times faster nofail is (same run);\n' +
      "zone: pages per page that went through nofail's shared zone rather than the thread's page cache; *: disturbed (see the end)",
  );
  console.log('');
}
if (scalingRows.length) {
  console.log('Workers: aggregate pages/s (and vs 1 worker)');
  console.log(table(['pattern: implementation', ...COUNTS.map((w) => `${w} worker${w > 1 ? 's' : ''}`)], scalingRows));
  console.log('');
}
if (otherRows.length) {
  console.log(table(['case', 'median', 'p25 .. p75', '', 'noise'], otherRows));
  console.log('');
}
console.log(table(['target', 'measured', ''], targets.map((t) => [t.target, t.measured, t.mark])));
console.log(`\nmachine: ${machineLine(m)}`);
console.log(`cpu probe: ${probeMedian.toFixed(2)} ns/step, ${probes[0].toFixed(2)} .. ${probes.at(-1).toFixed(2)} around the cases; other processes: ${elsewhere.toFixed(2)} cores on average`);
console.log(`${CASES.length} cases in ${seconds.toFixed(1)} s; results in ${out}`);
if (noisy.length) {
  const shown = noisy.length > 8 ? `${noisy.slice(0, 8).join('; ')}; and ${noisy.length - 8} more (results.json: otherLoad, cpuProbe)` : noisy.join('; ');
  console.log(`* disturbed, ${noisy.length} cells: ${shown}`);
}
for (const w of warnings) console.log(`warning: ${w}`);

mkdirSync(dirname(out), { recursive: true });
const report = { mode: quick ? 'quick' : 'full', started: new Date(started).toISOString(), seconds, machine: m, git, otherLoad: elsewhere, cpuProbe: probeMedian, warnings, results, targets };
writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
process.exitCode = Object.values(results).some((r) => r.error) ? 1 : 0;
