/**
 * The soak (scripts/soak.mjs) in CI mode: a mixed workload on four workers
 * and an OOM hog for a minute, in a child process, which must end with
 * exit status 0 (no invariant violation, no pattern mismatch, nothing lost,
 * memory flat after warm-up: RSS outside the V8 heaps, and the live heap). `npm run soak -- --minutes 10` is the long run.
 *
 * NOFAIL_SOAK_SECONDS sets the length (default 60; 0 skips it) — e.g.
 * NOFAIL_SOAK_SECONDS=10 while working on something else. The soak keeps
 * both cores of a small CI machine busy for that long, alongside the other
 * test files; 60 s keeps the whole `npm test` well under its 10-minute
 * budget. It runs against dist/ (npm test builds it first).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const seconds = Number(process.env.NOFAIL_SOAK_SECONDS ?? 60);
const script = fileURLToPath(new URL('../../scripts/soak.mjs', import.meta.url));

describe.skipIf(!(seconds > 0))('soak', () => {
  it(
    `${seconds} s of mixed load, reclaim, reservations and OOM kills: invariants hold and memory stays flat`,
    async () => {
      const child = spawn(process.execPath, [script, '--seconds', String(seconds)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
      if (code !== 0) console.log(out);
      expect(out).toMatch(/^verdict: PASS$/m);
      expect(code).toBe(0);
    },
    (seconds + 90) * 1000,
  );
});
