#!/usr/bin/env node
// `npm run test:asan-js`: the JavaScript test suite against an ASan+UBSan
// build of the addon (mapbox/node-cpp-skel's recipe, DESIGN §5).
//
// So that nobody's build/ is touched, it works in a scratch copy of the
// working tree, build-asan-js/ (git-ignored by build-*/): the files git
// tracks or would track, with node_modules linked. There it
//   1. builds the addon Debug (NOFAIL_DEBUG=1: the accounting identities on
//      every operation) with -fsanitize=address,undefined into
//      build-asan-js/build/Debug;
//   2. compiles the TypeScript (worker fixtures import dist/);
//   3. runs vitest with NOFAIL_BUILD=Debug and the ASan runtime preloaded
//      into every node process (a stock node is not instrumented; the
//      runtime must be first in the library list, or loading the addon
//      fails with "ASan runtime does not come first").
// ASAN_OPTIONS: detect_leaks=0, because node itself does not free
// everything at exit; halt_on_error, and every report goes to a file under
// build-asan-js/sanitizer-logs/ (a child process's stderr may be swallowed
// by vitest), which this script prints and counts as a failure.
//
// Ends with the plain closing line "N passed, N failed". Extra arguments
// go to vitest, e.g. `npm run test:asan-js -- test/mm/native`.
import { vitestCounts } from './vitest-counts.mjs';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const work = join(root, 'build-asan-js');
const logs = join(work, 'sanitizer-logs');
const args = process.argv.slice(2);
const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { stdio: 'inherit', ...opts });
  if (r.error) console.error(`${cmd}: ${r.error.message}`);
  return r.status ?? 1;
}

function fail(why) {
  console.error(why);
  console.log('\n0 passed, 1 failed');
  process.exit(1);
}

// 0. The scratch copy. build/ inside it is rebuilt from scratch below.
const list = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' });
if (list.status !== 0) fail('git ls-files failed');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
for (const f of list.stdout.split('\0')) {
  if (!f || !existsSync(join(root, f))) continue; // deleted in the working tree
  mkdirSync(dirname(join(work, f)), { recursive: true });
  cpSync(join(root, f), join(work, f));
}
symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'), 'dir');
mkdirSync(logs);

// 1. The addon, Debug, under ASan + UBSan. gyp's make generator appends
// CFLAGS/CXXFLAGS/LDFLAGS from the environment to every target.
const asanLib = spawnSync('gcc', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).stdout?.trim();
if (!asanLib || !existsSync(asanLib)) fail('libasan.so not found (gcc -print-file-name=libasan.so)');
const san = '-fsanitize=address,undefined -fno-sanitize=vptr -fno-sanitize-recover=all -fno-omit-frame-pointer -g';
const gyp =
  process.env.npm_config_node_gyp ??
  [join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')].find(existsSync);
console.log(`== building the addon with ${san} (${work}/build/Debug)`);
const buildEnv = { ...process.env, CFLAGS: san, CXXFLAGS: san, LDFLAGS: '-fsanitize=address,undefined' };
// Under `npm run` npm passes its config (nodedir: where the node headers
// are) as npm_config_*; run directly, ask npm for it, as node-gyp would not.
let nodedir = process.env.npm_config_nodedir;
if (!nodedir) {
  const q = spawnSync('npm', ['config', 'get', 'nodedir'], { encoding: 'utf8' });
  const v = q.status === 0 ? q.stdout.trim() : '';
  if (v && v !== 'undefined' && v !== 'null') nodedir = v;
}
const gypArgs = ['rebuild', '--debug', '-j', '2', ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
const built = gyp
  ? run(process.execPath, [gyp, ...gypArgs], { cwd: work, env: buildEnv })
  : run('node-gyp', gypArgs, { cwd: work, env: buildEnv });
if (built !== 0) fail('the ASan build of the addon failed');
console.log(`   built in ${elapsed()}`);

// 2. dist/ for the worker fixtures.
if (run(process.execPath, [join(work, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: work }) !== 0) {
  fail('TypeScript build failed');
}

// 3. vitest under the preloaded runtime.
const tmp = mkdtempSync(join(tmpdir(), 'nofail-asan-js-'));
const json = join(tmp, 'vitest.json');
const testEnv = {
  ...process.env,
  NOFAIL_BUILD: 'Debug',
  LD_PRELOAD: [asanLib, process.env.LD_PRELOAD].filter(Boolean).join(':'),
  ASAN_OPTIONS: `detect_leaks=0:halt_on_error=1:abort_on_error=1:log_path=${join(logs, 'asan')}`,
  UBSAN_OPTIONS: `halt_on_error=1:print_stacktrace=1:log_path=${join(logs, 'ubsan')}`,
};
console.log(`== vitest with LD_PRELOAD=${asanLib} NOFAIL_BUILD=Debug`);
const tTests = Date.now();
run(
  process.execPath,
  [join(work, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${json}`, ...args],
  { cwd: work, env: testEnv },
);
const testSecs = ((Date.now() - tTests) / 1000).toFixed(1);

let { passed, failed, skipped } = vitestCounts(json);
rmSync(tmp, { recursive: true, force: true });

const reports = readdirSync(logs);
for (const f of reports) {
  console.log(`\n---- ${join(logs, f)}`);
  process.stdout.write(readFileSync(join(logs, f), 'utf8'));
}
failed += reports.length;

console.log(`\nsanitizer reports: ${reports.length}; vitest under ASan: ${testSecs} s; total ${elapsed()}`);
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed === 0 ? 0 : 1);
