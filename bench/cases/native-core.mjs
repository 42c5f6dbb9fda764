// The native core without JavaScript: builds bench/native/core_bench.cc with
// CMake (Release, in build-rel/) when needed, runs it, and re-emits its
// numbers as one result line. The build is incremental, so a change to
// native/ is picked up; cmake missing makes the case skipped, not failed.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { emit, parseArgs } from '../lib/measure.mjs';

const opts = parseArgs();
const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = 'build-rel';
const exe = `${root}/${dir}/core_bench`;

function sh(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8' });
  if (r.error || r.status !== 0) return `${cmd} ${args.join(' ')} failed: ${r.error?.message ?? r.stderr.slice(-2000)}`;
  return null;
}

let why = null;
if (spawnSync('cmake', ['--version']).status !== 0) {
  why = existsSync(exe) ? null : 'cmake is not installed and build-rel/core_bench is missing';
} else {
  if (!existsSync(`${root}/${dir}/CMakeCache.txt`)) why = sh('cmake', ['-S', '.', '-B', dir, '-DCMAKE_BUILD_TYPE=Release']);
  why ??= sh('cmake', ['--build', dir, '--target', 'core_bench', '-j2']);
}
if (why) {
  emit({ case: 'native/core_bench', skipped: why });
  process.exit(0);
}

const r = spawnSync(exe, opts.quick ? ['--quick'] : [], { encoding: 'utf8' });
if (r.status !== 0) throw new Error(`core_bench exited with ${r.status}: ${r.stderr}`);
const out = JSON.parse(r.stdout);
const pick = (name) => out.results.find((x) => x.case === name)?.ns;
emit({
  case: 'native/core_bench',
  unit: 'ns/op',
  median: pick('order-0 alloc+free via PcpCache, 1 thread'),
  direct: pick('order-0 alloc+free, buddy directly, 1 thread'),
  results: out.results,
  machineThreads: out.machine_threads,
});
