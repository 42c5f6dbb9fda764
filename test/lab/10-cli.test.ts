/**
 * The lab's CLI as a person runs it, in child processes: bad options exit 2
 * with a message naming the option; the same seed gives the same operation
 * sequences; Ctrl-C stops a run within a second or two with a partial
 * report and no worker left; compare writes a report whose HTML renders in
 * headless Chromium with its charts visible (skipped, saying so, when
 * Chromium is not installed).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { assignWorkloads, shapeOf } from '../../src/lab/config.js';
import { DIGEST_FIRST_OPS, opDigest, planOp } from '../../src/lab/plan.js';
import { FNV_OFFSET, fnv1a } from '../../src/lab/rng.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'nofail-cli-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function cli(args: string[], timeout = 60_000) {
  if (!existsSync(CLI)) throw new Error('dist/cli/main.js is missing: run `npx tsc -p tsconfig.build.json` first');
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout });
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

describe('bad options', () => {
  it.each([
    [['stress', '--policy', 'nope'], /option '--policy <P>' argument 'nope' is invalid/],
    [['stress'], /required option '--policy <P>' not specified/],
    [['stress', '--policy', 'loop', '--workers', '0'], /option '--workers <N>' argument '0' is invalid/],
    [['stress', '--policy', 'loop', '--workload', 'disk'], /option '--workload <list>' argument 'disk' is invalid/],
    [['compare', '--duration', 'soon'], /option '--duration <T>' argument 'soon' is invalid/],
    [['compare', '--bogus'], /unknown option '--bogus'/],
    [['report', join(tmp, 'no-such-dir')], /argument 'DIR' is invalid/],
  ])('%j exits 2 naming the option', (args, message) => {
    const r = cli(args as string[]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('--help works on every command', () => {
    for (const args of [['--help'], ['compare', '--help'], ['stress', '--help'], ['report', '--help']]) {
      const r = cli(args);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/Usage: nofail/);
    }
  });
});

describe('reproducible operation sequences', () => {
  it('two runs with the same seed issue the same operations on every workload', () => {
    // How many operations fit in a run depends on the machine; which ones
    // come first does not. So the evidence is each workload's digest of
    // every worker's first DIGEST_FIRST_OPS operations. 3 s is three times
    // what the slowest-paced workload (net, one op per 4 ms) needs for them.
    // No hog and a large pool: nothing stalls.
    const opts = { poolBytes: 64 << 20, durationMs: 3000, seed: 7, timeScale: 0.5 };
    const mix = ['fs', 'net', 'user'] as const;
    const run = (out: string) => {
      const r = cli(['stress', '--policy', 'fail-fast', '--workload', mix.join(','), '--workers', '4', '--pool', '64MiB', '--duration', '3s', '--seed', String(opts.seed), '--json', '--out', join(tmp, out)]);
      expect(r.status, r.stderr).toBe(0);
      const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
      const w = result.policies[0].workloads as Record<string, { firstOps: number; firstDigest: string }>;
      return Object.fromEntries(Object.entries(w).map(([k, v]) => [k, { firstOps: v.firstOps, firstDigest: v.firstDigest }]));
    };
    // What the plan says those operations are, from the seed alone (collect.ts folds the workers in slot order).
    const shape = shapeOf(opts);
    const slots = assignWorkloads(4, mix);
    const expected: Record<string, { firstOps: number; firstDigest: string }> = {};
    for (const w of mix) {
      let h = FNV_OFFSET;
      slots.forEach((sw, slot) => {
        if (sw !== w) return;
        let d = FNV_OFFSET;
        for (let i = 0; i < DIGEST_FIRST_OPS; i++) d = opDigest(d, planOp(shape, w, slot, i));
        h = fnv1a(h, d);
      });
      expected[w] = { firstOps: DIGEST_FIRST_OPS, firstDigest: h.toString(16).padStart(8, '0') };
    }
    // firstOps == DIGEST_FIRST_OPS: every worker issued at least that many.
    expect(run('seed-a')).toEqual(expected);
    expect(run('seed-b')).toEqual(expected);
  });
});

describe('Ctrl-C', () => {
  it('stops a stress run within a second or two, writes a partial report, leaves no worker', async () => {
    const out = join(tmp, 'sigint');
    const spawned = performance.now();
    const child = spawn(process.execPath, [CLI, 'stress', '--policy', 'oom-kill', '--duration', '20s', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const done = exited(child);
    // The live view (stdout is not a terminal) prints a line as the run
    // starts and one a second after: interrupt a run that has been going for
    // a second, and note how long starting took.
    let startupMs = 0;
    await new Promise<void>((resolve, reject) => {
      let lines = 0;
      child.stdout!.on('data', (d: Buffer) => {
        lines += d.toString().split('\n').length - 1;
        if (lines >= 1 && startupMs === 0) startupMs = performance.now() - spawned;
        if (lines >= 2) resolve();
      });
      void done.then(({ code }) => reject(new Error(`exited (${code}) before the run was a second old: ${stderr}`)));
    });
    const t = performance.now();
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000); // the 20 s run is over by then in any case
    const { code } = await done;
    clearTimeout(timer);
    const took = performance.now() - t;
    expect(code, stderr).toBe(130);
    // Stopping (the workers finish their operation, the stuck ones are
    // terminated after a 300 ms grace, three report files are written) does
    // less than starting did (node, the modules, the pool, six workers):
    // 3x what starting took in this run, and never less than 2.5 s. A run
    // that ignored Ctrl-C would go on for its 20 s.
    expect(took).toBeLessThan(Math.max(2500, 3 * startupMs));
    for (const f of ['report.json', 'report.md', 'report.html']) expect(existsSync(join(out, f))).toBe(true);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.partial).toBe(true);
    expect(report.policies[0].partial).toBe(true);
    // The process is gone, and with it every worker thread it had.
    expect(child.exitCode).toBe(130);
  });
});

const CHROMIUM = ['chromium', 'chromium-browser', 'google-chrome'].find((c) => spawnSync(c, ['--version'], { encoding: 'utf8' }).status === 0);

describe('compare and its report', () => {
  const out = join(tmp, 'compare');
  it('writes report.json, report.md and report.html and prints the table', () => {
    const r = cli(['compare', '--policies', 'fail-fast,reserve-watermark', '--duration', '1s', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/policy\s+tx\/s\s+failed/);
    expect(r.stdout).toMatch(/^fail-fast\s/m);
    expect(r.stdout).toMatch(/^reserve-watermark\s/m);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.policies.map((p: { name: string }) => p.name)).toEqual(['fail-fast', 'reserve-watermark']);
    expect(report.findings.length).toBe(6);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).not.toMatch(/(src|href|url)\s*[=(]\s*["']?https?:/); // self-contained: nothing to fetch
    expect((html.match(/<svg class="chart/g) ?? []).length).toBe(3);
    // `nofail report DIR` re-renders the saved run.
    rmSync(join(out, 'report.md'));
    const again = cli(['report', out]);
    expect(again.status, again.stderr).toBe(0);
    expect(existsSync(join(out, 'report.md'))).toBe(true);
  });

  if (CHROMIUM === undefined) {
    it.skip('report.html renders in headless Chromium — SKIPPED: no chromium on PATH (apt-get install -y chromium)', () => {});
    console.warn('report.html rendering test SKIPPED: no chromium on PATH (apt-get install -y chromium)');
  } else {
    it(`report.html renders in headless Chromium (${CHROMIUM}) with its charts visible`, () => {
      const profile = mkdtempSync(join(tmp, 'chromium-'));
      const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`];
      const url = `file://${join(out, 'report.html')}`;
      const dom = spawnSync(CHROMIUM, [...flags, '--virtual-time-budget=3000', '--dump-dom', url], { encoding: 'utf8', timeout: 60_000 });
      expect(dom.status, dom.stderr).toBe(0);
      const charts = /data-charts="(\d+)"/.exec(dom.stdout)?.[1];
      const rendered = /data-charts-rendered="(\d+)"/.exec(dom.stdout)?.[1];
      expect(charts).toBe('3');
      expect(rendered).toBe(charts);
      const shot = join(profile, 'shot.png');
      const ss = spawnSync(CHROMIUM, [...flags, '--window-size=1280,2000', `--screenshot=${shot}`, url], { encoding: 'utf8', timeout: 60_000 });
      expect(ss.status, ss.stderr).toBe(0);
      expect(readFileSync(shot).length).toBeGreaterThan(20_000);
    });
  }
});
