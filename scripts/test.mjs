#!/usr/bin/env node
// `npm test`: the whole suite, ending with one plain closing line
// "N passed, N failed" (the CI reads it) that counts distinct tests. Steps:
//   1. build the TypeScript (dist/ is what worker fixtures import), and
//      check the layer rules with dependency-cruiser (ARCHITECTURE.md);
//   2. vitest over test/ (unit, native, workers);
//   2b. the allocator tests again against the debug build, reported on a
//       line of their own: they are the same tests, so they are not added to
//       the totals, but a test that fails there counts as failed;
//   3. the C++ core tests under ctest (skipped with a message when cmake is absent).
// Extra arguments go to vitest, e.g. `npm test -- test/mm/unit`.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vitestCounts, vitestOutcomes } from './vitest-counts.mjs';

const args = process.argv.slice(2);
let passed = 0;
let failed = 0;
let skipped = 0;

function add(c) {
  passed += c.passed;
  failed += c.failed;
  skipped += c.skipped;
}

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { stdio: opts.capture ? ['ignore', 'pipe', 'inherit'] : 'inherit', encoding: 'utf8', ...opts });
  if (opts.capture && r.stdout) process.stdout.write(r.stdout);
  return r;
}

// 1. TypeScript
const tsc = run('npx', ['tsc', '-p', 'tsconfig.build.json']);
if (tsc.status !== 0) {
  console.error('TypeScript build failed');
  failed++;
}
// The layer rules count as one test: they pass or they fail.
const layers = run('npm', ['run', '--silent', 'lint:layers']);
if (layers.status === 0) {
  console.log('layer rules (dependency-cruiser): passed');
  passed++;
} else {
  console.error('layer rules (dependency-cruiser): FAILED');
  failed++;
}

// 2. vitest
const dir = mkdtempSync(join(tmpdir(), 'nofail-test-'));
const json = join(dir, 'vitest.json');
run('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${json}`, ...args]);
const main = vitestCounts(json);
add(main);
const mainOutcomes = vitestOutcomes(json);
rmSync(dir, { recursive: true, force: true });

// 2b. The allocator tests again against the debug build of the addon, whose
// core checks every accounting identity on every operation (STYLE habit 5).
if (args.length === 0) {
  const built = spawnSync('npm', ['run', '--silent', 'build:debug'], { encoding: 'utf8' });
  if (built.status !== 0) {
    console.error(`debug build failed:\n${(built.stderr ?? '').slice(-3000)}`);
    failed++;
  } else {
    const dbgJson = join(mkdtempSync(join(tmpdir(), 'nofail-debug-')), 'vitest.json');
    run('npx', ['vitest', 'run', 'test/mm/native/1', 'test/mm/native/2', 'test/mm/native/3', 'test/mm/workers/4', 'test/lib/workers/45', '--reporter=dot', '--reporter=json', `--outputFile.json=${dbgJson}`], {
      env: { ...process.env, NOFAIL_BUILD: 'Debug' },
    });
    const c = vitestCounts(dbgJson, 'vitest (debug build)');
    console.log(`debug build (the same allocator tests, every identity checked on every operation): ${c.passed} passed, ${c.failed} failed`);
    // Distinct tests: one that passed above but fails on the debug build
    // moves from passed to failed; a debug pass with no report is a failure.
    const dbg = vitestOutcomes(dbgJson);
    if (dbg.size === 0) failed++;
    for (const [key, status] of dbg) {
      if (status !== 'failed') continue;
      console.error(`failed on the debug build: ${key}`);
      const before = mainOutcomes.get(key);
      if (before === 'passed') passed--;
      if (before !== 'failed') failed++;
    }
  }
}

// 3. C++ core tests (only for a full run)
if (args.length === 0) {
  const hasCmake = spawnSync('cmake', ['--version']).status === 0;
  if (!hasCmake) {
    console.log('C++ core tests skipped: cmake is not installed');
  } else {
    const b = 'build-cmake';
    const ok =
      run('cmake', ['-S', '.', '-B', b, '-DCMAKE_BUILD_TYPE=Debug'], { capture: true }).status === 0 &&
      run('cmake', ['--build', b, '-j2'], { capture: true }).status === 0;
    if (!ok) {
      console.error('C++ core tests failed to build');
      failed++;
    } else {
      const r = run('ctest', ['--test-dir', b, '--output-on-failure'], { capture: true });
      // The C++ binaries print their own "N passed, N failed" per binary; count those.
      const out = r.stdout ?? '';
      const logs = join(b, 'Testing', 'Temporary', 'LastTest.log');
      const text = existsSync(logs) ? readFileSync(logs, 'utf8') : out;
      for (const m of text.matchAll(/^(\d+) passed, (\d+) failed$/gm)) {
        passed += Number(m[1]);
        failed += Number(m[2]);
      }
      if (r.status !== 0 && !/[1-9]\d* failed/.test(text)) failed++;
    }
  }
}

console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed === 0 ? 0 : 1);
