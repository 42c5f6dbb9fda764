#!/usr/bin/env node
// The many-core curve: the shared-state patterns of cases/workers.mjs
// (lib/worker-loops.mjs: working-set and handoff) at 1, 2, 4, 8, 16 workers
// for nofail and its peers, beside pure computation (the machine's ceiling),
// each point in a fresh process. On a machine with fewer cores than workers
// the extra workers only oversubscribe: the curve then shows what
// contention costs, not speedup; the header says how many cores there were.
//   node bench/scaling.mjs [--quick] [--workers 1,2,4] [--pattern working-set,handoff-ring]
//                          [--impl nofail,naive mutex pool] [--out file] [--wait-quiet S]
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { runCase } from './lib/child.mjs';
import { fmtNs, fmtRate, fmtRatio, table } from './lib/format.mjs';
import { gitState, machine, machineLine, otherLoad, waitQuiet } from './lib/machine.mjs';
import { parseArgs } from './lib/measure.mjs';

const PATTERN_ARGS = {
  'working-set': ['--pattern', 'working-set'],
  'handoff-ring': ['--pattern', 'handoff', '--role', 'ring'],
  'handoff-split': ['--pattern', 'handoff', '--role', 'split'],
};
const opts = parseArgs();
const counts = (opts.workers ?? '1,2,4,8,16').split(',').map(Number);
const patterns = (opts.pattern ?? 'working-set,handoff-ring').split(',');
const impls = (opts.impl ?? 'nofail,naive mutex pool,@thi.ng/malloc,Buffer.allocUnsafe').split(',');
const out = resolve(opts.out ?? '.bench-out/scaling.json');
for (const p of patterns) if (!PATTERN_ARGS[p]) throw new Error(`unknown pattern ${p}; one of ${Object.keys(PATTERN_ARGS).join(', ')}`);
const m = machine();
const started = Date.now();
const load = otherLoad();

async function point(args, label) {
  if (opts['wait-quiet']) await waitQuiet({ maxMs: 1000 * Number(opts['wait-quiet']) });
  process.stderr.write(`  ${label} ... `);
  const caseLoad = otherLoad();
  const r = await runCase('workers.mjs', args, { quick: opts.quick, timeoutMs: 300_000 });
  r.otherLoad = Math.round(caseLoad() * 100) / 100;
  process.stderr.write(`${r.error ? `FAILED: ${r.error}` : r.skipped ? `skipped: ${r.skipped}` : fmtRate(r.median)} (${r.seconds.toFixed(1)} s)\n`);
  return r;
}

// curve[pattern][impl][workers]; compute once, pattern-free.
const curve = { compute: { compute: {} } };
for (const w of counts) curve.compute.compute[w] = await point(['--impl', 'compute', '--workers', String(w)], `compute x${w}`);
for (const p of patterns) {
  curve[p] = {};
  for (const impl of impls) {
    curve[p][impl] = {};
    for (const w of counts) {
      if (p === 'handoff-split' && w % 2 !== 0) continue;
      curve[p][impl][w] = await point([...PATTERN_ARGS[p], '--impl', impl, '--workers', String(w)], `${p} ${impl} x${w}`);
    }
  }
}

const cell = (series, w) => {
  const r = series[w];
  if (!r) return '';
  if (r.error) return 'FAILED';
  if (r.skipped) return 'skipped';
  const first = series[Object.keys(series)[0]];
  const ratio = first?.median && first !== r ? ` ${fmtRatio(r.median / first.median)}` : '';
  return `${fmtRate(r.median)}${ratio}${r.otherLoad >= 0.15 ? '*' : ''}`;
};
const rows = [['pure compute (ceiling)', ...counts.map((w) => cell(curve.compute.compute, w))]];
for (const p of patterns) {
  for (const impl of impls) rows.push([`${p}: ${impl}`, ...counts.map((w) => cell(curve[p][impl], w))]);
}
const elsewhere = load();
console.log(`\nworker scaling (${opts.quick ? 'quick' : 'full'}) — ${new Date(started).toISOString()}`);
console.log('aggregate pages/s over all workers, median of rounds, and the ratio to the fewest workers');
console.log(`machine: ${machineLine(m)}`);
console.log(`(${m.availableParallelism} usable cores: beyond that, workers oversubscribe and the curve shows contention, not speedup)\n`);
console.log(table(['pattern: implementation', ...counts.map((w) => `${w} worker${w > 1 ? 's' : ''}`)], rows));
const ns = (r) => (r && !r.error && !r.skipped ? fmtNs(r.nsPerPage) : '-');
console.log(`\nnofail, ns per page (all workers together): ${patterns.map((p) => `${p} ${counts.map((w) => ns(curve[p].nofail?.[w])).join(' / ')}`).join('; ')}`);
console.log(`${((Date.now() - started) / 1000).toFixed(1)} s; results in ${out}`);
if (elsewhere >= 0.15) console.log(`warning: other processes used ${elsewhere.toFixed(2)} cores on average during the run (points marked *): numbers are noisy`);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify({ mode: opts.quick ? 'quick' : 'full', started: new Date(started).toISOString(), machine: m, git: gitState(), otherLoad: elsewhere, curve }, null, 2)}\n`);
process.exitCode = Object.values(curve).some((c) => Object.values(c).some((s) => Object.values(s).some((r) => r.error))) ? 1 : 0;
