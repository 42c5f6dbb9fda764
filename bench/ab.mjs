#!/usr/bin/env node
// A/B: the same hot-path cases against two builds of the package, in one
// run, alternating fresh processes so that machine drift hits both alike.
// For "the change costs nothing measurable": build the old commit in a
// worktree (npm ci or a node_modules link, the addon, tsc) and compare.
//   node bench/ab.mjs --a <old root> --b <new root> [--rounds 5] [--cases hot,burst512,bulk64,reserve] [--quick]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { summarize } from './lib/measure.mjs';

const { values } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string', default: '.' },
    rounds: { type: 'string', default: '5' },
    cases: { type: 'string', default: 'hot,burst512,bulk64,reserve' },
    quick: { type: 'boolean', default: false },
  },
});
if (values.a === undefined) {
  console.error('usage: node bench/ab.mjs --a <old package root> [--b <new root>] [--rounds N] [--cases list] [--quick]');
  process.exit(2);
}
const child = fileURLToPath(new URL('./lib/ab-child.mjs', import.meta.url));
const rounds = Number(values.rounds);
const cases = values.cases.split(',');
const got = {};
for (let r = 0; r < rounds; r++) {
  for (const name of cases) {
    for (const [label, root] of r % 2 === 0 ? [['a', values.a], ['b', values.b]] : [['b', values.b], ['a', values.a]]) {
      const out = spawnSync(process.execPath, [child, root, name, ...(values.quick ? ['--quick'] : [])], { encoding: 'utf8' });
      if (out.status !== 0) throw new Error(`${label} ${name}: ${out.stderr}`);
      ((got[name] ??= { a: [], b: [] })[label]).push(JSON.parse(out.stdout.trim().split('\n').at(-1)).median);
    }
  }
}
console.log(`A = ${values.a}, B = ${values.b}; ${rounds} rounds, median of per-process medians, ns per page`);
console.log('case        A (min-max)             B (min-max)             B/A');
for (const name of cases) {
  const a = summarize(got[name].a);
  const b = summarize(got[name].b);
  const f = (s) => `${s.median.toFixed(1)} (${s.min.toFixed(1)}-${s.max.toFixed(1)})`.padEnd(24);
  console.log(`${name.padEnd(12)}${f(a)}${f(b)}${(b.median / a.median).toFixed(2)}`);
}
