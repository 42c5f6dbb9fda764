// The timing harness every JS microbenchmark case uses.
//
// Why not tinybench: it times each call of the task on its own, and for
// operations of 30-100 ns the timer read costs as much as the operation.
// Here a case hands over a loop `run(n)` that performs the operation n
// times; the harness grows n until one call lasts a sample's length, warms
// up, then takes samples and reports ns per operation. GC pauses land inside
// the samples, as they do in a real program; the median keeps a single
// unlucky sample from moving the result.
import { performance } from 'node:perf_hooks';

/** `--quick` plus `--name value` pairs from process.argv. */
export function parseArgs(argv = process.argv.slice(2)) {
  const opts = { quick: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') opts.quick = true;
    else if (a.startsWith('--')) opts[a.slice(2)] = argv[++i];
  }
  return opts;
}

/**
 * Sample plan per mode: quick fits CI, full is for numbers you quote. An
 * operation so slow that one call of run() outlasts a sample many times
 * over (a peer's quadratic case) takes fewer samples, at least 5, so that
 * sampling stays within `budgetMs`.
 */
export function plan(quick) {
  return quick ? { warmupMs: 150, sampleMs: 4, samples: 15, budgetMs: 1500 } : { warmupMs: 800, sampleMs: 15, samples: 41, budgetMs: 6000 };
}

export function summarize(values) {
  const v = [...values].sort((a, b) => a - b);
  const q = (p) => v[Math.min(v.length - 1, Math.max(0, Math.round(p * (v.length - 1))))];
  return { median: q(0.5), p25: q(0.25), p75: q(0.75), min: v[0], max: v[v.length - 1], n: v.length };
}

/**
 * Times `run(n)` and returns ns per operation (median of samples and spread).
 * `opsPerCall` scales the result when one operation of `run` stands for
 * several (allocBulk of 64 pages reported per page).
 */
export function measure(run, { quick = false, opsPerCall = 1 } = {}) {
  const { warmupMs, sampleMs, budgetMs } = plan(quick);
  let { samples } = plan(quick);
  let n = 16;
  let calls = 0;  // every op run, warm-up included (a case may relate counters to it)
  const warmEnd = performance.now() + warmupMs;
  let dt;
  while (true) {
    const t0 = performance.now();
    run(n);
    calls += n;
    dt = performance.now() - t0;
    if (dt < sampleMs && n < 2 ** 30) n = Math.ceil(n * Math.min(16, Math.max(1.5, sampleMs / Math.max(dt, 0.01))));
    else if (performance.now() >= warmEnd) break;
  }
  samples = Math.min(samples, Math.max(5, Math.floor(budgetMs / dt)));
  globalThis.gc?.();
  const ns = [];
  for (let s = 0; s < samples; s++) {
    const t0 = process.hrtime.bigint();
    run(n);
    calls += n;
    ns.push(Number(process.hrtime.bigint() - t0) / (n * opsPerCall));
  }
  return { unit: 'ns/op', ...summarize(ns), batch: n, totalOps: calls * opsPerCall };
}

/** The one line of output a case prints: run.mjs reads the last JSON line. */
export function emit(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
