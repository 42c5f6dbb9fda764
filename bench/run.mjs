#!/usr/bin/env node
// `npm run bench` (full) and `npm run bench -- --quick` (CI-sized).
// Every case runs in a fresh `node` process (bench/cases/*.mjs, one JSON
// line each); baselines are measured in the same run; the table shows
// medians, ratios to the baselines and each target with pass/MISS. The
// results also go to .bench-out/results.json (--out to change).
// Options: --quick, --only <substring of a case id>, --out <file>,
// --repeat <n>: run the list n times, interleaved, keep each case's median;
// --wait-quiet <seconds>: before each case, wait up to that long for other
// processes to go idle (for shared machines).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { runCase } from './lib/child.mjs';
import { fmtNs, fmtRatio, fmtSpread, fmtValue, table } from './lib/format.mjs';
import { buildWarnings, cpuProbe, gitState, machine, machineLine, otherLoad, waitQuiet } from './lib/machine.mjs';
import { parseArgs } from './lib/measure.mjs';
import { evaluateTargets } from './lib/targets.mjs';

const opts = parseArgs();
const quick = opts.quick;
const out = resolve(opts.out ?? '.bench-out/results.json');
const BASE = 'baseline/Buffer.allocUnsafe';

// id, file, args, label; `vs` says what the ratio column compares with.
const CASES = [
  ['alloc-free/nofail', 'alloc-free.mjs', ['--impl', 'nofail'], 'nofail alloc+free, bytes[0] written', BASE],
  ['alloc-free/nofail-nobytes', 'alloc-free.mjs', ['--impl', 'nofail-nobytes'], 'nofail alloc+free, no view', BASE],
  ['alloc-free/naive', 'alloc-free.mjs', ['--impl', 'naive'], 'naive mutex pool alloc+free, view, byte', BASE],
  [BASE, 'baseline.mjs', ['--kind', 'Buffer.allocUnsafe'], 'Buffer.allocUnsafe(4096) + byte', null],
  ['baseline/Buffer.allocUnsafeSlow', 'baseline.mjs', ['--kind', 'Buffer.allocUnsafeSlow'], 'Buffer.allocUnsafeSlow(4096) + byte', BASE],
  ['baseline/new ArrayBuffer', 'baseline.mjs', ['--kind', 'new ArrayBuffer'], 'new ArrayBuffer(4096) + byte', BASE],
  ['bulk/allocBulk64+freeBulk', 'bulk.mjs', [], 'allocBulk(64) + freeBulk, per page', BASE],
  ...['nofail', 'naive', 'Buffer.allocUnsafe', 'compute'].flatMap((impl) =>
    [1, 2].map((w) => [`workers/${impl}/${w}`, 'workers.mjs', ['--impl', impl, '--workers', String(w)], `${impl === 'compute' ? 'pure compute (ceiling)' : impl}, ${w} worker${w > 1 ? 's' : ''}`, w > 1 ? `workers/${impl}/1` : null]),
  ),
  ['reserve/take+release', 'reserve.mjs', [], 'reservation take+release (memory plentiful)', null],
  ['wakeup/free-to-waiter', 'wakeup.mjs', [], 'blocked worker woken after a free (µs)', null],
  ['native/core_bench', 'native-core.mjs', [], 'native core (C++, no JS)', null],
  ['meta/idle-pool-rss', 'meta-rss.mjs', [], 'idle 1 GiB pool: RSS overhead', null],
].filter(([id]) => !opts.only || id.includes(opts.only));

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
const runs = Object.fromEntries(CASES.map(([id]) => [id, []]));
cpuProbe();  // warms the probe up
const runLoad = otherLoad();
for (let k = 0; k < repeat; k++) {
  for (const [id, file, args] of CASES) {
    if (opts['wait-quiet']) await waitQuiet({ maxMs: 1000 * Number(opts['wait-quiet']) });
    process.stderr.write(`  ${id}${repeat > 1 ? ` (${k + 1}/${repeat})` : ''} ... `);
    const probeBefore = cpuProbe();
    const caseLoad = otherLoad();
    const r = await runCase(file, args, { quick });
    r.otherLoad = Math.round(caseLoad() * 100) / 100;
    r.cpuProbe = [probeBefore, cpuProbe()];
    runs[id].push(r);
    process.stderr.write(`${r.error ? 'FAILED' : r.skipped ? 'skipped' : 'done'} (${r.seconds.toFixed(1)} s)\n`);
  }
}
const results = {};
for (const [id, list] of Object.entries(runs)) {
  const ok = list.filter((r) => !r.error && !r.skipped).sort((a, b) => a.median - b.median);
  results[id] = ok.length ? { ...ok[(ok.length - 1) >> 1], repeats: list.length > 1 ? ok.map((r) => r.median) : undefined } : list[0];
}

function vsCell(id, vs) {
  const r = results[id];
  const b = results[vs];
  const perWorker = r.unit === 'ops/s' ? `${fmtNs(r.nsPerOpPerWorker)}/op in each worker` : '';
  if (!vs || !b || b.error || b.skipped) return id === BASE ? 'baseline' : perWorker;
  if (r.unit === 'ops/s') return `${fmtRatio(r.median / b.median)} of 1 worker; ${perWorker}`;
  const x = b.median / r.median;
  return x >= 1 ? `${fmtRatio(x)} faster than Buffer.allocUnsafe` : `${fmtRatio(1 / x)} slower than Buffer.allocUnsafe`;
}

// What may have disturbed a case: other processes' CPU use during it (in
// cores), and a CPU probe just before or after it that was more than 20% off
// the run's median (a host slowing the VM down shows only there).
const probes = Object.values(results).flatMap((r) => r.cpuProbe).sort((a, b) => a - b);
const probeMedian = probes[Math.floor(probes.length / 2)];
const noisy = (r) => {
  const why = [];
  if (r.otherLoad >= 0.15) why.push(`load ${r.otherLoad.toFixed(2)}`);
  const off = Math.max(...r.cpuProbe.map((p) => Math.abs(p / probeMedian - 1)));
  if (off > 0.2) why.push(`cpu probe ${r.cpuProbe.map((p) => `${p > probeMedian ? '+' : ''}${Math.round(100 * (p / probeMedian - 1))}%`).join('/')}`);
  return why.join(', ');
};
const rows = [];
for (const [id, , , label, vs] of CASES) {
  const r = results[id];
  if (r.error) rows.push([label, 'FAILED', '', r.error.slice(0, 100)]);
  else if (r.skipped) rows.push([label, 'skipped', '', r.skipped]);
  else if (id === 'native/core_bench') {
    for (const x of r.results) rows.push([`native: ${x.case}`, fmtValue({ unit: 'ns/op' }, x.ns), '(median of runs)', '', noisy(r)]);
  } else if (id === 'meta/idle-pool-rss') {
    rows.push([label, fmtValue(r), `${(r.overheadBytes / 1024).toFixed(0)} KiB`, `${r.bytesPerPage.toFixed(2)} B/page`, noisy(r)]);
  } else {
    rows.push([label, fmtValue(r), fmtSpread(r), vsCell(id, vs), noisy(r)]);
    if (r.allocBulk) {
      rows.push(['  of which allocBulk(64), per page', fmtValue(r, r.allocBulk.median), fmtSpread({ unit: r.unit, ...r.allocBulk }), '']);
      rows.push(['  of which freeBulk, per page', fmtValue(r, r.freeBulk.median), fmtSpread({ unit: r.unit, ...r.freeBulk }), '']);
    }
  }
}

const targets = evaluateTargets(results);
const elsewhere = runLoad();
if (elsewhere >= 0.15) {
  warnings.push(`other processes used ${elsewhere.toFixed(2)} cores on average during the run (per case: column "noise"): rerun on a quiet machine`);
}
if (probes.at(-1) > 1.3 * probes[0]) {
  warnings.push(`the CPU's speed changed during the run (probe ${probes[0].toFixed(2)} .. ${probes.at(-1).toFixed(2)} ns/step): compare ratios, not absolute numbers`);
}
const seconds = (Date.now() - started) / 1000;
const git = gitState();
console.log(`\nnofail bench (${quick ? 'quick' : 'full'}) — ${new Date(started).toISOString()}, git ${git.commit}${git.dirty ? ' (with local changes)' : ''}`);
console.log(`machine: ${machineLine(m)}`);
console.log(`cpu probe: ${probeMedian.toFixed(2)} ns/step, ${probes[0].toFixed(2)} .. ${probes.at(-1).toFixed(2)} around the cases\n`);
console.log(table(['case', 'median', 'p25 .. p75', 'vs baseline (same run)', 'noise'], rows));
console.log('');
console.log(table(['target', 'measured', ''], targets.map((t) => [t.target, t.measured, t.mark])));
console.log(`\n${CASES.length} cases in ${seconds.toFixed(1)} s; results in ${out}`);
for (const w of warnings) console.log(`warning: ${w}`);

mkdirSync(dirname(out), { recursive: true });
const report = { mode: quick ? 'quick' : 'full', started: new Date(started).toISOString(), seconds, machine: m, git, otherLoad: elsewhere, cpuProbe: probeMedian, warnings, results, targets };
writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
process.exitCode = Object.values(results).some((r) => r.error) ? 1 : 0;
