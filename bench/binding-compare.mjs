#!/usr/bin/env node
// Builds of the addon, raw native calls, the same process, interleaved:
// what a binding change costs on the calls every allocation crosses.
//
//   node --expose-gc bench/binding-compare.mjs OLD.node NEW.node [MORE.node ...] [--rounds 15]
//   valgrind --tool=callgrind node bench/binding-compare.mjs X.node --count 40000 --case alloc+free
//
// Cases, each on its own pool of each addon (watermarks 0, so nothing but
// the call itself is measured):
//   alloc+free       alloc(order 0) then free: what Pool.alloc/free cost with pcp: false
//   bulk64           allocBulk(64) then freeBulk of the same 64, per page
//   reserve+release  tryReserve(1) then addReserved(-1): reserve(1) + release()
// Each round measures every (addon, case), the addons' order rotating from
// round to round so that none always runs first; the result per (addon,
// case) is the median of its rounds' medians, in CPU time (measureCpu);
// rounds, not long samples, ride out a shared machine's noise.
// `--count N --case C` runs one case N times on one addon, untimed: under
// callgrind, the inclusive cost of Node-API's FunctionCallbackWrapper::Invoke
// divided by N is the native side of one iteration in instructions, a
// count that other processes cannot disturb.
// Raw calls, because the TypeScript wrapper is the same for every build and
// create()'s signature is not: positional before the node-addon-api port,
// an options object after; both are handled.
import { createRequire } from 'node:module';
import { basename, resolve } from 'node:path';
import { parseArgs, summarize } from './lib/measure.mjs';

const args = process.argv.slice(2);
const paths = args.filter((a, i) => a.endsWith('.node') && !args[i - 1]?.startsWith('--'));
const opts = parseArgs(args.filter((a) => !paths.includes(a)));
const rounds = Number(opts.rounds ?? 15);
if (paths.length < (opts.count ? 1 : 2)) {
  console.error('usage: node --expose-gc bench/binding-compare.mjs OLD.node NEW.node [MORE.node ...] [--rounds 15]');
  console.error('       node bench/binding-compare.mjs X.node --count N --case alloc+free|bulk64|reserve+release');
  process.exit(2);
}

const require = createRequire(import.meta.url);
const PAGES = 4096;
const ALLOC_LOW = 1;
const BULK = 64;

function open(path) {
  const addon = require(resolve(path));
  const control = new Int32Array(new SharedArrayBuffer(4 * addon.controlSlots));
  const r =
    typeof addon.layout === 'object'
      ? addon.create(
          { bytes: PAGES * 4096, maxOrder: 10, min: 0, low: 0, high: 0, populate: false, mlock: false, hugepages: false, fill: -1, releaseOrder: -1 },
          control,
        )
      : addon.create(PAGES * 4096, 10, 0, 0, 0, 0, -1, control);
  const slot = Array.isArray(r) ? r[0] : r.slot;
  const scale = 2 ** addon.genBits;
  const out = new Int32Array(2 * BULK);
  const refs = new Int32Array(3 * BULK);
  const cases = {
    'alloc+free': (n) => {
      for (let i = 0; i < n; i++) {
        const v = addon.alloc(slot, 0, ALLOC_LOW, 0);
        const pfn = Math.floor(v / scale);
        addon.free(slot, pfn, 0, v - pfn * scale);
      }
    },
    bulk64: (n) => {
      for (let i = 0; i < n; i++) {
        if (addon.allocBulk(slot, BULK, 0, ALLOC_LOW, 0, out) !== BULK) throw new Error('allocBulk refused');
        for (let k = 0; k < BULK; k++) {
          refs[3 * k] = out[2 * k];
          refs[3 * k + 2] = out[2 * k + 1];
        }
        addon.freeBulk(slot, refs, BULK);
      }
    },
    'reserve+release': (n) => {
      for (let i = 0; i < n; i++) {
        if (!addon.tryReserve(slot, 1, ALLOC_LOW)) throw new Error('tryReserve refused');
        addon.addReserved(slot, -1);
      }
    },
  };
  return { name: basename(path), addon, slot, cases };
}

// Like lib/measure.mjs, but timed in CPU time (process.cpuUsage: user +
// system of the whole process, which runs nothing else meanwhile): on a
// shared machine a sample then measures the calls, not the time this
// process spent waiting for a core. Sizes `n` to ~sampleMs of CPU, warms
// up, and returns the samples' ns per op.
function cpuNs(run, n) {
  const t0 = process.cpuUsage();
  run(n);
  const t = process.cpuUsage(t0);
  return (t.user + t.system) * 1000;
}
function measureCpu(run, { opsPerCall = 1, sampleMs = 20, samples = 9, warmupMs = 100 } = {}) {
  let n = 16;
  const warmEnd = performance.now() + warmupMs;
  for (;;) {
    const ns = cpuNs(run, n);
    if (ns < sampleMs * 1e6 && n < 2 ** 30) n = Math.ceil(n * Math.min(16, Math.max(1.5, (sampleMs * 1e6) / Math.max(ns, 1e4))));
    else if (performance.now() >= warmEnd) break;
  }
  globalThis.gc?.();
  const out = [];
  for (let i = 0; i < samples; i++) out.push(cpuNs(run, n) / (n * opsPerCall));
  return summarize(out);
}

const builds = paths.map(open);
if (opts.count) {
  const run = builds[0].cases[opts.case];
  if (!run) throw new Error(`--case: one of ${Object.keys(builds[0].cases).join(', ')}`);
  run(Number(opts.count));
  process.exit(0);
}
const caseNames = Object.keys(builds[0].cases);
const perRound = new Map(); // `${build}|${case}` -> medians
for (let r = 0; r < rounds; r++) {
  for (let k = 0; k < builds.length; k++) {
    const b = builds[(r + k) % builds.length];
    for (const c of caseNames) {
      const m = measureCpu(b.cases[c], { opsPerCall: c === 'bulk64' ? BULK : 1 });
      const key = `${b.name}|${c}`;
      if (!perRound.has(key)) perRound.set(key, { medians: [], mins: [] });
      perRound.get(key).medians.push(m.median);
      perRound.get(key).mins.push(m.min);
    }
  }
}

const results = {};
for (const c of caseNames) {
  results[c] = {};
  const base = summarize(perRound.get(`${builds[0].name}|${c}`).medians).median;
  const baseBest = Math.min(...perRound.get(`${builds[0].name}|${c}`).mins);
  for (const b of builds) {
    const r = perRound.get(`${b.name}|${c}`);
    const s = summarize(r.medians);
    const best = Math.min(...r.mins);
    results[c][b.name] = {
      median: +s.median.toFixed(1),
      p25: +s.p25.toFixed(1),
      p75: +s.p75.toFixed(1),
      ratio: +(s.median / base).toFixed(3),
      best: +best.toFixed(1),
      bestRatio: +(best / baseBest).toFixed(3),
    };
  }
}
for (const b of builds) {
  if (b.addon.check(b.slot) !== null) throw new Error(`${b.name}: the pool does not add up`);
  b.addon.detach(b.slot);
}
const w = Math.max(...builds.map((b) => b.name.length));
console.log(`ns per op (per page for bulk64): median of ${rounds} interleaved rounds' medians [p25..p75], ratio to ${builds[0].name};`);
console.log(`best: the fastest sample of any round, and its ratio (CPU time throughout)`);
for (const c of caseNames) {
  console.log(c);
  for (const b of builds) {
    const x = results[c][b.name];
    console.log(`  ${b.name.padEnd(w)}  ${String(x.median).padStart(7)}  [${x.p25}..${x.p75}]  x${x.ratio}   best ${x.best}  x${x.bestRatio}`);
  }
}
console.log(JSON.stringify({ rounds, results }));
