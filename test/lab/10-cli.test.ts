/**
 * The lab's CLI as a person runs it, in child processes: the conventions of
 * commander-based tools (--version, the default command's options in the
 * top-level help, an unknown command named as one, limits stated before
 * they are enforced; a bad option exits 2 naming it); the same seed gives
 * the same operation sequences (and examples/service.mjs's --help follows
 * the same conventions); Ctrl-C stops a run within a second or two
 * with a partial report and no worker left; compare with --repeat writes a
 * report with ranges and "k of N" findings, whose HTML a headless Chromium
 * renders the way a person needs it (skipped, saying so, when Chromium is
 * not installed).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { assignWorkloads, shapeOf } from '../../src/lab/config.js';
import { DIGEST_FIRST_OPS, opDigest, planOp } from '../../src/lab/plan.js';
import { FNV_OFFSET, fnv1a } from '../../src/lab/rng.js';
import { WORKLOADS } from '../../src/lab/workloads/index.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const PACKAGE = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
const tmp = mkdtempSync(join(tmpdir(), 'nofail-cli-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function cli(args: string[], timeout = 120_000) {
  if (!existsSync(CLI)) throw new Error('dist/cli/main.js is missing: run `npx tsc -p tsconfig.build.json` first');
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout });
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

describe('the conventions of a commander-based CLI', () => {
  it.each([
    [['stress', '--policy', 'nope'], /option '--policy <P>' argument 'nope' is invalid/],
    [['stress'], /required option '--policy <P>' not specified/],
    [['stress', '--policy', 'loop', '--workers', '0'], /option '--workers <N>' argument '0' is invalid/],
    [['stress', '--policy', 'loop', '--workload', 'disk'], /option '--workload <list>' argument 'disk' is invalid/],
    [['compare', '--duration', 'soon'], /option '--duration <T>' argument 'soon' is invalid/],
    [['compare', '--repeat', '0'], /option '--repeat <N>' argument '0' is invalid. expected an integer from 1 to 20/],
    [['compare', '--bogus'], /unknown option '--bogus'/],
    [['bogus'], /error: unknown command 'bogus'/],
    [['stres', '--policy', 'loop'], /error: unknown command 'stres'\n\(Did you mean stress\?\)/],
    [['stress', '--policy', './no-such-policy.mjs'], /policy module '.\/no-such-policy.mjs' is invalid \(import\).*no such file/],
    [['report', join(tmp, 'no-such-dir')], /argument 'DIR' is invalid/],
  ])('%j exits 2 naming what was wrong', (args, message) => {
    const r = cli(args as string[]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('states the limit the mix sets on --workers before it enforces it, in the same words', () => {
    const help = cli(['stress', '--help']).stdout.replace(/\s+/g, ' ');
    const limit = 'an integer from 1 to 32, and at least one per workload in the mix (4 with the default fs,net,user,hog)';
    expect(help).toContain(limit);
    const r = cli(['stress', '--policy', 'loop', '--workers', '2']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`option '--workers <N>' argument '2' is invalid. Expected ${limit}: the mix fs,net,user,hog needs at least 4.`);
  });

  it('--help works on every command, and the top-level help shows the default command\'s options', () => {
    for (const args of [['--help'], ['compare', '--help'], ['stress', '--help'], ['report', '--help']]) {
      const r = cli(args);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/Usage: nofail/);
    }
    const top = cli(['--help']).stdout;
    for (const flag of ['--quick', '--repeat <N>', '--policies <a,b>', '--policy <module>', '--workload <list>', '--version']) expect(top).toContain(flag);
  });

  it('--version prints the package version', () => {
    for (const flag of ['--version', '-V']) {
      const r = cli([flag]);
      expect(r.status).toBe(0);
      expect(r.stdout.trim()).toBe(PACKAGE.version);
    }
  });
});

describe('examples/service.mjs follows the same conventions', () => {
  const SERVICE = fileURLToPath(new URL('../../examples/service.mjs', import.meta.url));
  const service = (args: string[]) => spawnSync(process.execPath, [SERVICE, ...args], { encoding: 'utf8', timeout: 30_000 });

  it('--help prints its usage and exits 0', () => {
    const r = service(['--help']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Usage: node examples\/service\.mjs \[options\]/);
    for (const flag of ['--port <N>', '--pool-size <SIZE>', '--policy <P>', '-h, --help']) expect(r.stdout).toContain(flag);
  });

  it('an unknown option is named, with the usage, exit 2 and no stack trace', () => {
    const r = service(['--bogus']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^error: Unknown option '--bogus'/);
    expect(r.stderr).toContain('Usage: node examples/service.mjs');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('reproducible operation sequences', () => {
  it('two runs with the same seed issue the same operations on every workload', () => {
    // How many operations fit in a run depends on the machine; which ones
    // come first does not. So the evidence is each workload's digest of
    // every worker's first DIGEST_FIRST_OPS operations. 3 s is three times
    // what the slowest-paced workload (net, one op per 4 ms) needs for them.
    // No hog and a large pool: nothing stalls.
    const opts = { poolBytes: 64 << 20, durationMs: 3000, seed: 7, timeScale: 0.1 };
    const mix = ['fs', 'net', 'user'] as const;
    const run = (out: string) => {
      const r = cli(['stress', '--policy', 'fail-fast', '--workload', mix.join(','), '--workers', '4', '--pool', '64MiB', '--duration', '3s', '--seed', String(opts.seed), '--json', '--out', join(tmp, out)]);
      expect(r.status, r.stderr).toBe(0);
      const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
      const w = result.runs[0].workloads as Record<string, { firstOps: number; firstDigest: string }>;
      return Object.fromEntries(Object.entries(w).map(([k, v]) => [k, { firstOps: v.firstOps, firstDigest: v.firstDigest }]));
    };
    // What the plan says those operations are, from the seed alone (collect.ts folds the workers in slot order).
    const shape = shapeOf(opts);
    const slots = assignWorkloads(4, mix);
    const expected: Record<string, { firstOps: number; firstDigest: string }> = {};
    for (const w of mix) {
      const workload = WORKLOADS.find((x) => x.name === w)!;
      let h = FNV_OFFSET;
      slots.forEach((sw, slot) => {
        if (sw !== w) return;
        let d = FNV_OFFSET;
        for (let i = 0; i < DIGEST_FIRST_OPS; i++) d = opDigest(d, planOp(shape, workload, slot, i));
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
    // terminated, three report files are written) does less than starting
    // did (node, the modules, the pool, six workers): 3x what starting took
    // in this run, and never less than 2.5 s. A run that ignored Ctrl-C
    // would go on for its 20 s.
    expect(took).toBeLessThan(Math.max(2500, 3 * startupMs));
    for (const f of ['report.json', 'report.md', 'report.html']) expect(existsSync(join(out, f))).toBe(true);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.partial).toBe(true);
    expect(report.runs[0].partial).toBe(true);
    // The process is gone, and with it every worker thread it had.
    expect(child.exitCode).toBe(130);
  });
});

const CHROMIUM = ['chromium', 'chromium-browser', 'google-chrome'].find((c) => spawnSync(c, ['--version'], { encoding: 'utf8' }).status === 0);

/**
 * What a person sees at 1280 px, measured by the browser: appended to a
 * copy of the page, this script puts on <body> whether the page scrolls
 * sideways, how many table cells are cut off (outside the window) and how
 * many table boxes scroll, and in how many memory charts the min
 * watermark's line is drawn at least 3 px above the inset's baseline.
 */
const CHECK = `addEventListener('load', () => {
  const d = document.body.dataset, root = document.documentElement;
  d.viewport = String(innerWidth);
  d.hscroll = String(root.scrollWidth > root.clientWidth ? 1 : 0);
  let hidden = 0, cells = 0, boxes = 0;
  for (const t of document.querySelectorAll('table')) {
    const box = t.closest('.box');
    if (box && box.scrollWidth > box.clientWidth + 1) boxes++;
    for (const c of t.querySelectorAll('th,td')) {
      cells++;
      const r = c.getBoundingClientRect();
      if (r.width <= 0 || r.left < 0 || r.right > innerWidth + 0.5) hidden++;
    }
  }
  d.cells = String(cells); d.hiddenCells = String(hidden); d.scrollingBoxes = String(boxes);
  let above = 0, charts = 0;
  for (const s of document.querySelectorAll('svg.memory')) {
    charts++;
    const zoom = s.querySelector('g.panel.zoom');
    const wm = zoom && zoom.querySelector('line.wm-min');
    const base = zoom && zoom.querySelector('line.baseline');
    if (wm && base && base.getBoundingClientRect().top - wm.getBoundingClientRect().top >= 3) above++;
  }
  d.memoryCharts = String(charts); d.watermarkAbove = String(above);
});`;

describe('compare, its ranges and its report', () => {
  const out = join(tmp, 'compare');
  it('runs every policy --repeat times and reports medians with min–max, "k of N" findings and the summary by criterion', () => {
    const r = cli(['compare', '--policies', 'fail-fast,reserve-watermark', '--repeat', '2', '--duration', '1s', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/2 policies × 2 runs of 1 s \(seeds 1–2\)/);
    expect(r.stdout).toMatch(/policy\s+tx\/s\s+failed tx/);
    // Each policy's medians, and below them the runs' min–max where they differ.
    expect(r.stdout).toMatch(/^fail-fast\s/m);
    expect(r.stdout).toMatch(/^reserve-watermark\s/m);
    expect(r.stdout).toMatch(/^2 of 2 runs\s+\d+–\d+\s/m);
    expect(r.stdout).toMatch(/observed in \d of 2 runs/);
    expect(r.stdout).toMatch(/Summary by criterion/);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    // Round by round, each with its seed: the per-run figures.
    expect(report.runs.map((x: { name: string; seed: number }) => `${x.name}@${x.seed}`)).toEqual(['fail-fast@1', 'reserve-watermark@1', 'fail-fast@2', 'reserve-watermark@2']);
    expect(report.findings.length).toBe(6);
    for (const f of report.findings.filter((x: { runs: number }) => x.runs > 0)) {
      expect(f.runs).toBe(2);
      expect(f.perRun.map((x: { seed: number }) => x.seed)).toEqual([1, 2]);
    }
    expect(report.criteria.length).toBe(5);
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
    const render = (html: string, name: string) => {
      const page = join(tmp, `${name}.html`);
      writeFileSync(page, html.replace('</body>', `<script>${CHECK}</script></body>`));
      const profile = mkdtempSync(join(tmp, 'chromium-'));
      const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`];
      const dom = spawnSync(CHROMIUM, [...flags, '--window-size=1280,900', '--virtual-time-budget=3000', '--dump-dom', `file://${page}`], { encoding: 'utf8', timeout: 60_000 });
      expect(dom.status, dom.stderr).toBe(0);
      const body = /<body([^>]*)>/.exec(dom.stdout)?.[1] ?? '';
      const data = Object.fromEntries([...body.matchAll(/data-([a-z-]+)="([^"]*)"/g)].map(([, k, v]) => [k!, v!]));
      return { data, profile, page, flags };
    };

    it(`report.html at 1280 px (${CHROMIUM}): no sideways scroll, every column visible, watermarks above the baseline, charts drawn`, () => {
      const { data, profile, page, flags } = render(readFileSync(join(out, 'report.html'), 'utf8'), 'report');
      expect(data.viewport).toBe('1280');
      expect(data.hscroll).toBe('0');
      expect(Number(data.cells)).toBeGreaterThan(50);
      expect(data['hidden-cells']).toBe('0');
      expect(data['scrolling-boxes']).toBe('0');
      expect(data['memory-charts']).toBe('2');
      expect(data['watermark-above']).toBe('2');
      expect(data['charts-rendered']).toBe(data.charts);
      const shot = join(profile, 'shot.png');
      const ss = spawnSync(CHROMIUM, [...flags, '--window-size=1280,2000', `--screenshot=${shot}`, `file://${page}`], { encoding: 'utf8', timeout: 60_000 });
      expect(ss.status, ss.stderr).toBe(0);
      expect(readFileSync(shot).length).toBeGreaterThan(20_000);
    });

    it('the same checks flag a page that a person could not read (a table wider than the window, a watermark on the baseline)', () => {
      const wide = `<table><tr>${Array.from({ length: 30 }, (_, i) => `<td>column-${i}-wide-cell</td>`).join('')}</tr></table>`;
      const flat = '<svg class="chart memory" width="300" height="100"><g class="panel zoom"><line class="wm-min" x1="0" x2="300" y1="90" y2="90" stroke="#000"/><line class="baseline" x1="0" x2="300" y1="91" y2="91" stroke="#000"/></g></svg>';
      const { data } = render(`<!doctype html><html><body>${wide}${flat}</body></html>`, 'unreadable');
      expect(data.hscroll).toBe('1');
      expect(Number(data['hidden-cells'])).toBeGreaterThan(0);
      expect(data['watermark-above']).toBe('0');
    });
  }
});
