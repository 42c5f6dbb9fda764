#!/usr/bin/env node
// The worker-scaling curve: cases/workers.mjs at 1, 2, 4, 8, 16 workers for
// nofail, the naive mutex pool, Buffer.allocUnsafe and pure computation (the
// machine's ceiling), each point in a fresh process. On a machine with fewer
// cores than workers the extra workers only oversubscribe: the curve then
// shows what contention costs, not speedup.
//   node bench/scaling.mjs [--quick] [--workers 1,2,4] [--impl nofail,naive] [--out file]
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { runCase } from './lib/child.mjs';
import { fmtRate, fmtRatio, table } from './lib/format.mjs';
import { gitState, machine, machineLine, otherLoad } from './lib/machine.mjs';
import { parseArgs } from './lib/measure.mjs';

const opts = parseArgs();
const counts = (opts.workers ?? '1,2,4,8,16').split(',').map(Number);
const impls = (opts.impl ?? 'nofail,naive,Buffer.allocUnsafe,compute').split(',');
const out = resolve(opts.out ?? '.bench-out/scaling.json');
const m = machine();
const started = Date.now();
const load = otherLoad();

const curve = {};
for (const impl of impls) {
  curve[impl] = {};
  for (const w of counts) {
    process.stderr.write(`  ${impl} x${w} ... `);
    const r = await runCase('workers.mjs', ['--impl', impl, '--workers', String(w)], { quick: opts.quick });
    curve[impl][w] = r;
    process.stderr.write(`${r.error ? `FAILED: ${r.error}` : r.skipped ? `skipped: ${r.skipped}` : fmtRate(r.median)} (${r.seconds.toFixed(1)} s)\n`);
  }
}

const cell = (impl, w) => {
  const r = curve[impl][w];
  const one = curve[impl][counts[0]];
  if (r.error) return ['FAILED', ''];
  if (r.skipped) return ['skipped', ''];
  return [fmtRate(r.median), one?.median ? fmtRatio(r.median / one.median) : ''];
};
const header = ['workers', ...impls.flatMap((i) => [i, `vs ${counts[0]}w`])];
const rows = counts.map((w) => [String(w), ...impls.flatMap((i) => cell(i, w))]);
const elsewhere = load();
console.log(`\nworker scaling (${opts.quick ? 'quick' : 'full'}), aggregate alloc+free+byte throughput, median of rounds`);
console.log(`machine: ${machineLine(m)}`);
console.log(`(${m.availableParallelism} usable cores: beyond that, workers oversubscribe)\n`);
console.log(table(header, rows));
console.log(`\n${((Date.now() - started) / 1000).toFixed(1)} s; results in ${out}`);
if (elsewhere >= 0.15) console.log(`warning: other processes used ${elsewhere.toFixed(2)} cores on average during the run: numbers are noisy`);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify({ mode: opts.quick ? 'quick' : 'full', machine: m, git: gitState(), otherLoad: elsewhere, curve }, null, 2)}\n`);
process.exitCode = Object.values(curve).some((c) => Object.values(c).some((r) => r.error)) ? 1 : 0;
