#!/usr/bin/env node
// `npm run test:stability -- --runs N --load K`: the whole suite N times in
// a row while K busy processes keep that many cores loaded, to show that no
// verdict depends on the machine's speed. Each run's full output goes to a
// log file in a temp directory (printed first); each run prints its closing
// line ("N passed, N failed", the last such line of scripts/test.mjs) and
// its duration, and a summary line ends:
//
//   stability: 3 of 3 runs with 0 failures (load 2)
//
// Exit status 0 only when every run ended with 0 failures (and exit status
// 0); 1 otherwise; 2 for a bad option; 130 after Ctrl-C.
//
// Options: --runs N (default 3), --load K busy processes (default 2; 0 for
// none), --command CMD runs CMD through the shell instead of `npm test`
// (e.g. a quick check of this script: --command 'echo 5 passed, 0 failed').
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const USAGE = 'usage: npm run test:stability -- [--runs N] [--load K] [--command CMD]';
const CLOSING = /^(\d+) passed, (\d+) failed(?:, \d+ skipped)?$/gm;

function usageError(message) {
  console.error(`test:stability: ${message}\n${USAGE}`);
  process.exit(2);
}

function count(value, name, min) {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min) usageError(`option '--${name}' argument '${value}' is invalid: an integer >= ${min}`);
  return n;
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      load: { type: 'string', default: '2' },
      command: { type: 'string', default: 'npm test' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (e) {
  usageError(e.message);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const runs = count(values.runs, 'runs', 1);
const load = count(values.load, 'load', 0);
const command = values.command;
if (command.trim() === '') usageError("option '--command' argument is empty");

// --- the load: K processes spinning on a core each --------------------------
// Each also ends itself once its parent is gone (its ppid changes), so a
// killed runner (SIGKILL, no exit handler) does not leave them spinning.
const BUSY = 'const p = process.ppid; for (let i = 0; ; i++) if ((i & 0xffffff) === 0 && process.ppid !== p) process.exit(0);';
const busy = [];
for (let i = 0; i < load; i++) busy.push(spawn(process.execPath, ['-e', BUSY], { stdio: 'ignore' }));

let current = null; // the run in progress
function stopBusy() {
  for (const b of busy.splice(0)) b.kill('SIGKILL');
}
process.on('exit', () => {
  stopBusy();
  // The run's own process group (it was started detached): npm, vitest and its forks.
  if (current !== null) {
    try {
      process.kill(-current.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    console.log(`\ntest:stability: ${sig}: stopping`);
    process.exit(130);
  });
}

// --- the runs ------------------------------------------------------------------
const logs = mkdtempSync(join(tmpdir(), 'nofail-stability-'));
console.log(`test:stability: ${runs} run${runs === 1 ? '' : 's'} of \`${command}\` with ${load} busy process${load === 1 ? '' : 'es'}; full logs in ${logs}`);

function duration(ms) {
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const whole = Math.round(s); // rounded first, so 299.7 s reads 5m 00s, not 4m 60s
  return `${Math.floor(whole / 60)}m ${String(whole % 60).padStart(2, '0')}s`;
}

/** Runs the command once; resolves with its exit code and its whole output. */
function runOnce(logFile) {
  return new Promise((resolve) => {
    const log = createWriteStream(logFile);
    let out = '';
    // detached: its own process group, which the exit handler can end whole.
    const child = spawn(command, { shell: true, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    current = child;
    for (const s of [child.stdout, child.stderr]) {
      s.on('data', (d) => {
        out += d;
        log.write(d);
      });
    }
    child.on('close', (code, signal) => {
      current = null;
      log.end(() => resolve({ code: code ?? (signal ? 128 : 1), out }));
    });
  });
}

let clean = 0;
for (let i = 1; i <= runs; i++) {
  const t0 = performance.now();
  const { code, out } = await runOnce(join(logs, `run-${i}.log`));
  const ms = performance.now() - t0;
  // eslint-disable-next-line no-control-regex
  const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
  const closing = [...plain.matchAll(CLOSING)].at(-1);
  const failed = closing === undefined ? -1 : Number(closing[2]);
  const ok = failed === 0 && code === 0;
  if (ok) clean++;
  const line = closing === undefined ? 'no closing line' : closing[0];
  console.log(`run ${i}/${runs}: ${line}${code !== 0 ? ` (exit status ${code})` : ''} (${duration(ms)})${ok ? '' : `, log ${join(logs, `run-${i}.log`)}`}`);
}
stopBusy();
console.log(`stability: ${clean} of ${runs} runs with 0 failures (load ${load})`);
process.exit(clean === runs ? 0 : 1);
