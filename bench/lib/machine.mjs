// What the numbers were measured on, and on which code: the CPU model from
// /proc/cpuinfo, cores, Node, and the git commit (with a flag for local
// changes). Also warns when dist/ is older than src/, since the cases
// measure the compiled dist/.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

export function machine() {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  let processors = os.cpus().length;
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    cpu = /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim() ?? cpu;
    processors = info.match(/^processor\s*:/gm)?.length ?? processors;
  } catch {}
  return {
    cpu,
    cores: processors,
    availableParallelism: os.availableParallelism(),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    totalMemGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
  };
}

export function gitState() {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== '';
    return { commit, dirty };
  } catch {
    return { commit: 'unknown', dirty: false };
  }
}

/** Problems that would make the numbers meaningless or stale. */
export function buildWarnings() {
  const warnings = [];
  const newest = (dir, ext) =>
    existsSync(dir)
      ? Math.max(0, ...readdirSync(dir).filter((f) => f.endsWith(ext)).map((f) => statSync(`${dir}/${f}`).mtimeMs))
      : 0;
  const dist = newest(`${root}/dist`, '.js');
  if (dist === 0) warnings.push('dist/ is missing: run `npm run build:ts` first');
  else if (newest(`${root}/src`, '.ts') > dist) warnings.push('dist/ is older than src/: the numbers are for the last build (`npm run build:ts`)');
  if (!existsSync(`${root}/build/Release/nofail.node`)) warnings.push('build/Release/nofail.node is missing: run `npm install`');
  return warnings;
}

export function machineLine(m) {
  return `${m.cpu}, ${m.cores} cores (${m.availableParallelism} usable), ${m.totalMemGiB} GiB, node ${m.node}, ${m.platform}`;
}

// CPU time in clock ticks: the whole machine's busy time (/proc/stat) and
// this process's own plus that of its waited-for descendants (/proc/self/stat
// utime, stime, cutime, cstime). The difference over an interval is what
// other processes used: on a 2-core box, another build or test run during a
// case halves what it can measure, so the report flags it.
function ticks() {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const busy = cpu.reduce((a, b) => a + b, 0) - cpu[3] - (cpu[4] ?? 0);  // minus idle, iowait
    const self = readFileSync('/proc/self/stat', 'utf8');
    const f = self.slice(self.lastIndexOf(')') + 2).split(' ').map(Number);  // f[0] is field 3 (state)
    const own = f[11] + f[12] + f[13] + f[14];  // fields 14..17
    return { busy, own, at: Date.now() };
  } catch {
    return null;
  }
}

/** Starts a meter; calling the result gives the other processes' load in cores since then. */
export function otherLoad() {
  const a = ticks();
  return () => {
    const b = ticks();
    if (!a || !b || b.at === a.at) return 0;
    const hz = 100;  // USER_HZ on Linux
    return Math.max(0, (b.busy - a.busy - (b.own - a.own)) / hz / ((b.at - a.at) / 1000));
  };
}

/**
 * Waits until other processes use less than `below` cores over a 500 ms
 * window, for at most `maxMs`. Returns the load last seen.
 */
export async function waitQuiet({ below = 0.15, maxMs = 60_000 } = {}) {
  const end = Date.now() + maxMs;
  let seen;
  do {
    const m = otherLoad();
    await new Promise((r) => setTimeout(r, 500));
    seen = m();
  } while (seen >= below && Date.now() < end);
  return seen;
}

/**
 * A fixed integer workload (xorshift), ns per step, median of 5 runs of
 * about 3 ms: the runner takes it before every case. On a virtual machine
 * the host can slow the CPU down without any process here showing up in
 * /proc/stat; a probe well off the run's median marks the case as noisy.
 */
export function cpuProbe() {
  const runs = [];
  let x = 0x9e3779b9 | 0;
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 2_000_000; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
    }
    runs.push(Number(process.hrtime.bigint() - t0) / 2_000_000);
  }
  if (x === 0) console.error('');  // keeps x alive
  return runs.sort((a, b) => a - b)[2];
}
