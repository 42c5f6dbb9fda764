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
    // No hog and a large pool: nothing stalls, so every worker issues its whole schedule.
    const run = (out: string) => {
      const r = cli(['stress', '--policy', 'fail-fast', '--workload', 'fs,net,user', '--workers', '4', '--pool', '64MiB', '--duration', '1s', '--seed', '7', '--json', '--out', join(tmp, out)]);
      expect(r.status, r.stderr).toBe(0);
      const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
      const w = result.policies[0].workloads as Record<string, { issued: number; digest: string }>;
      return Object.fromEntries(Object.entries(w).map(([k, v]) => [k, { issued: v.issued, digest: v.digest }]));
    };
    const a = run('seed-a');
    const b = run('seed-b');
    expect(Object.keys(a).sort()).toEqual(['fs', 'net', 'user']);
    expect(a.fs!.issued).toBeGreaterThan(100);
    expect(b).toEqual(a);
  });
});

describe('Ctrl-C', () => {
  it('stops a stress run within a second or two, writes a partial report, leaves no worker', async () => {
    const out = join(tmp, 'sigint');
    const child = spawn(process.execPath, [CLI, 'stress', '--policy', 'oom-kill', '--duration', '20s', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdout!.resume();
    const done = exited(child);
    await new Promise((r) => setTimeout(r, 1500));
    const t = performance.now();
    child.kill('SIGINT');
    const { code } = await Promise.race([done, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no exit within 5 s of SIGINT')), 5000))]);
    const took = performance.now() - t;
    expect(code, stderr).toBe(130);
    expect(took).toBeLessThan(2500);
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
