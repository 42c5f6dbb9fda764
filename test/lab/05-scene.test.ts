/**
 * The 2015 deadlock by construction (src/lab/workloads/scene.ts): in a run
 * of every policy the workload stages it — an fs transaction holds the fs
 * lock for the hog, the hog takes the rest of memory and blocks on that
 * lock — so what each policy makes of it is its own doing, in every run,
 * not scheduling luck: the loop and the plain OOM killer hang with the
 * victim blocked on the lock; the reaper and the victim timeout recover,
 * each its own way (the timeout by killing a bystander); a reservation's
 * hog never blocks on the lock; 3.19 fails the holder's transaction.
 *
 * One run per policy, through the CLI; the outcomes are read from the
 * board's record of the scene and the OOM killer's reports (deadlock.ts),
 * none of them a count in a time window. On a machine slow enough to cue
 * the scene late, the run waits for its tail (run.ts).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyResult } from '../../src/lab/collect.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'nofail-scene-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const POLICIES = ['fail-fast', 'loop', 'oom-kill', 'oom-reaper', 'oom-timeout', 'reserve-watermark', 'reserve-tokens'];
const runs = new Map<string, PolicyResult>();

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error('dist/cli/main.js is missing: run `npx tsc -p tsconfig.build.json` first');
  const out = join(tmp, 'scene');
  const r = spawnSync(process.execPath, [CLI, 'compare', '--policies', POLICIES.join(','), '--repeat', '1', '--seed', '5', '--out', out], { encoding: 'utf8', timeout: 170_000 });
  if (r.status !== 0) throw new Error(`compare exited ${r.status}: ${r.stderr}`);
  for (const run of JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')).runs as PolicyResult[]) runs.set(run.name, run);
}, 180_000);

const deadlock = (name: string) => runs.get(name)!.deadlock;

describe('the 2015 deadlock, staged in every run', () => {
  it('is staged the same way under every policy: the hog cues it, an fs transaction holds the lock for it', () => {
    for (const name of POLICIES) {
      const d = deadlock(name);
      expect(runs.get(name)!.failure, name).toBeNull();
      expect(d.cuer, name).toBe('hog-3');
      expect(d.holder, name).toMatch(/^fs-\d$/);
      expect(d.lockedAtMs, name).toBeGreaterThanOrEqual(d.cuedAtMs!);
    }
  });

  it('loop: livelock — nobody is killed, the holder never completes, nothing moves to the end', () => {
    const d = deadlock('loop');
    expect(d.outcome).toBe('livelock');
    expect(d.victimAtMs).toBeNull();
    expect(d.releasedAtMs).toBeNull();
    expect(runs.get('loop')!.metrics.oomKills).toBe(0);
  });

  it('oom-kill: livelock — the victim is blocked on the lock the looping holder holds, and no second victim is chosen', () => {
    const d = deadlock('oom-kill');
    expect(d.outcome).toBe('livelock');
    expect(d.victimBlocked).toBe(true);
    expect(d.nextVictims).toEqual([]);
    expect(runs.get('oom-kill')!.metrics.victimsNeverExited).toBe(1);
  });

  it('oom-reaper: recovered — the reaper takes the blocked victim\'s pages, then the holder commits; no bystander dies', () => {
    const d = deadlock('oom-reaper');
    expect(d.outcome).toBe('recovered');
    expect(d.victimBlocked).toBe(true);
    expect(d.reapedAtMs).not.toBeNull();
    expect(d.releasedAtMs!).toBeGreaterThanOrEqual(d.reapedAtMs!);
    expect(d.holderOutcome).toBe('ok');
    expect(runs.get('oom-reaper')!.metrics.bystanderKills).toBe(0);
  });

  it('oom-timeout: recovered — the blocked victim outlives the timeout and a second victim, not the hog, is killed', () => {
    const d = deadlock('oom-timeout');
    expect(d.outcome).toBe('recovered');
    expect(d.victimBlocked).toBe(true);
    expect(d.timedOutAtMs).not.toBeNull();
    expect(d.nextVictims.length).toBeGreaterThan(0);
    expect(d.nextVictims.some((v) => !v.startsWith('hog-'))).toBe(true);
    expect(d.releasedAtMs!).toBeGreaterThan(d.timedOutAtMs!);
    expect(runs.get('oom-timeout')!.metrics.bystanderKills).toBeGreaterThan(0);
  });

  it('the reservations: never happened — no OOM victim is ever blocked on the lock of a holder waiting for memory', () => {
    for (const name of ['reserve-watermark', 'reserve-tokens']) {
      const d = deadlock(name);
      expect(d.outcome, name).toBe('never happened');
      expect(runs.get(name)!.metrics.txFailed, name).toBe(0);
    }
  });

  it('fail-fast (3.19): the holder\'s allocation fails instead, and the filesystem goes read-only', () => {
    expect(deadlock('fail-fast').outcome).toBe('failed');
    expect(runs.get('fail-fast')!.metrics.readOnlyFlips).toBeGreaterThan(0);
  });
});
