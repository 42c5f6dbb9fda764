#!/usr/bin/env node
// `npm run test:sanitize`: the C++ tests of native/core + native/sync
// (native/test/core_test.cc, stress_test.cc) under ASan+UBSan and under
// TSan, each in its own build directory (build-asan/, build-tsan/), run by
// ctest. CMakeLists.txt makes every report fatal (-fno-sanitize-recover=all,
// halt_on_error=1 for each runtime), so a clean run is a passing run.
//
// Ends with the plain closing line "N passed, N failed" (the C++ binaries'
// own counts, summed; a build failure, a crash or a sanitizer report with
// no count counts as one failure). Exit status 0 only when it is clean.
//
//   node scripts/sanitize.mjs [asan|tsan ...]
//
// NOFAIL_STRESS_ITERS: iterations per stress thread. The defaults keep the
// whole run under 2 minutes on 2 cores from a clean tree (about 1 minute of
// it is compiling): ASan costs ~2x, so it runs 5x the plain build's default
// (1,000,000 per thread, 4 M operations, ~15 s); TSan costs 5-15x, so it
// runs the plain default (200000 per thread, 0.8 M operations, ~15 s), still
// enough for the 4096-page pool to run dry and refill many times over.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const variants = {
  asan: { sanitize: 'address,undefined', iters: 1000000 },
  tsan: { sanitize: 'thread', iters: 200000 },
};
const chosen = process.argv.slice(2);
for (const v of chosen) {
  if (!(v in variants)) {
    console.error(`unknown variant "${v}"; expected one of: ${Object.keys(variants).join(', ')}`);
    process.exit(2);
  }
}
const names = chosen.length > 0 ? chosen : Object.keys(variants);

// A report that got past halt_on_error (it cannot, but a wrong option would
// let it) still fails the run.
const REPORT = /^(==\d+==ERROR: \w+Sanitizer|WARNING: ThreadSanitizer|SUMMARY: \w+Sanitizer|.*: runtime error: )/m;

let passed = 0;
let failed = 0;
const lines = [];

function run(cmd, argv, env = {}) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

for (const name of names) {
  const { sanitize, iters } = variants[name];
  const dir = `build-${name}`;
  const t0 = Date.now();
  const stressIters = process.env.NOFAIL_STRESS_ITERS ?? String(iters);
  console.log(`== ${name}: -fsanitize=${sanitize}, NOFAIL_STRESS_ITERS=${stressIters} (${dir}/)`);
  const cfg = run('cmake', ['-S', '.', '-B', dir, '-DCMAKE_BUILD_TYPE=Debug', `-DNOFAIL_SANITIZE=${sanitize}`]);
  const build = cfg.status === 0 ? run('cmake', ['--build', dir, '-j2', '--target', 'core_test', 'stress_test']) : cfg;
  if (build.status !== 0) {
    process.stdout.write(build.out);
    console.log(`${name}: build failed`);
    failed++;
    lines.push(`${name}: build failed`);
    continue;
  }
  const test = run('ctest', ['--test-dir', dir, '--output-on-failure'], { NOFAIL_STRESS_ITERS: stressIters });
  const log = join(dir, 'Testing', 'Temporary', 'LastTest.log');
  const text = existsSync(log) ? readFileSync(log, 'utf8') : test.out;
  let p = 0;
  let f = 0;
  for (const m of text.matchAll(/^(\d+) passed, (\d+) failed$/gm)) {
    p += Number(m[1]);
    f += Number(m[2]);
  }
  const report = REPORT.exec(text);
  // A binary killed by a report never prints its count; count the crash.
  if ((test.status !== 0 || report) && f === 0) f = 1;
  if (test.status !== 0 || report || f > 0) {
    process.stdout.write(text);
    if (report) console.log(`${name}: sanitizer report: ${report[0].trim()}`);
  }
  for (const m of text.matchAll(/^ {2}(\d+) operations on (\d+) threads$/gm)) {
    console.log(`  stress: ${m[1]} operations on ${m[2]} threads`);
  }
  passed += p;
  failed += f;
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  const line = `${name}: ${p} passed, ${f} failed${report ? ' (sanitizer report)' : ''} in ${secs} s`;
  console.log(line);
  lines.push(line);
}

console.log('');
for (const l of lines) console.log(l);
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
