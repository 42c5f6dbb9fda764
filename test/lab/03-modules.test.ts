/**
 * Users' policies and workloads: the modules in examples/ load and pass
 * the interface's checks; a module that is not a policy or workload is
 * refused up front with its path and what is wrong; and through the CLI a
 * custom policy and a custom workload run beside the built-in ones — while
 * a policy whose hook throws is reported with its path, the hook and the
 * stack, marked failed, and the others go on.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { LabModuleError, loadModule } from '../../src/lab/modules.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'dist/cli/main.js');
const POLICY = join(ROOT, 'examples/custom-policy.mjs');
const WORKLOAD = join(ROOT, 'examples/custom-workload.mjs');
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'nofail-modules-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function cli(args: string[]) {
  if (!existsSync(CLI)) throw new Error('dist/cli/main.js is missing: run `npx tsc -p tsconfig.build.json` first');
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000, cwd: ROOT });
}

async function refusal(kind: 'policy' | 'workload', path: string): Promise<LabModuleError> {
  const e = await loadModule(kind as 'policy', path).then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(LabModuleError);
  return e as LabModuleError;
}

describe('the examples', () => {
  it('are a policy and a workload as the lab checks them', async () => {
    const p = await loadModule('policy', POLICY);
    expect(p.value.name).toBe('reserve-deadline');
    expect(p.path).toBe(POLICY);
    const w = await loadModule('workload', WORKLOAD);
    expect(w.value.name).toBe('requests');
    expect(w.label).toBe(WORKLOAD);
  });
});

describe('a module that is not a policy', () => {
  it.each([
    ['bad-key-policy.mjs', 'export', /unknown key 'sumary' \(valid: name, summary, system, pool, setup, fs\)/],
    ['builtin-name-policy.mjs', 'export', /a built-in policy is called 'loop'; give yours another name/],
    ['no-export.mjs', 'export', /exports no policy: expected `export default \{ name, \.\.\. \}` or `export const policy = \{ \.\.\. \}`/],
    ['throwing-import-policy.mjs', 'import', /importing it threw Error: this module cannot be loaded/],
    ['no-such-file.mjs', 'import', /no such file/],
  ])('%s is refused with its path and what is wrong (ERR_LAB_MODULE)', async (name, hook, message) => {
    const e = await refusal('policy', fixture(name));
    expect(e.code).toBe('ERR_LAB_MODULE');
    expect(e.hook).toBe(hook);
    expect(e.module).toBe(fixture(name));
    expect(e.message).toContain(fixture(name));
    expect(e.message).toMatch(message);
  });

  it('a module that throws on import is refused with the stack of what it threw', async () => {
    const e = await refusal('policy', fixture('throwing-import-policy.mjs'));
    expect(e.hookStack).toMatch(/throwing-import-policy\.mjs:\d+/);
  });

  it('the CLI refuses it before anything runs: exit 2, naming the module', () => {
    const r = cli(['compare', '--policy', fixture('bad-key-policy.mjs'), '--out', join(tmp, 'never')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`policy module '${fixture('bad-key-policy.mjs')}' is invalid (export)`);
    expect(existsSync(join(tmp, 'never'))).toBe(false);
  });
});

describe('your policy and your workload, through the CLI', () => {
  it('compare runs a custom policy and a custom workload beside the built-ins; a throwing policy is reported and the rest goes on', () => {
    const out = join(tmp, 'compare');
    const r = cli([
      'compare',
      '--policies', 'fail-fast',
      '--policy', './examples/custom-policy.mjs',
      '--policy', fixture('throwing-policy.mjs'),
      '--workload', 'fs,net,user,./examples/custom-workload.mjs,hog',
      '--repeat', '1',
      '--duration', '1s',
      '--out', out,
    ]);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.options.modules).toEqual({
      policies: { 'reserve-deadline': POLICY, 'throws-in-transaction': fixture('throwing-policy.mjs') },
      workloads: { requests: resolve(ROOT, 'examples/custom-workload.mjs') },
    });
    const byName = Object.fromEntries(report.runs.map((x: { name: string }) => [x.name, x]));
    // The custom policy ran its transactions, on the custom workload too.
    for (const name of ['fail-fast', 'reserve-deadline']) {
      expect(byName[name].failure).toBeNull();
      expect(byName[name].metrics.txCommitted).toBeGreaterThan(0);
      expect(byName[name].workloads.requests.ok).toBeGreaterThan(0);
    }
    // The throwing one: its path, the hook, the stack; marked failed in the table.
    const failure = byName['throws-in-transaction'].failure;
    expect(failure).toMatchObject({ module: fixture('throwing-policy.mjs'), hook: 'transaction' });
    expect(failure.message).toContain('RangeError: the tenth transaction is not allowed');
    expect(failure.stack).toMatch(/throwing-policy\.mjs:\d+/);
    expect(r.stdout).toMatch(/^throws-in-transaction FAILED/m);
    // Any worker that runs transactions may be the one whose tenth throws.
    expect(r.stdout).toContain(`throws-in-transaction FAILED: ${fixture('throwing-policy.mjs')}: hook transaction threw in `);
    expect(failure.where).toMatch(/^(fs|requests|hog)-\d$/);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toContain(`**Failed**: ${fixture('throwing-policy.mjs')}: hook \`transaction\` threw`);
  });

  it('stress runs a custom workload under a custom policy', () => {
    const r = cli(['stress', '--policy', './examples/custom-policy.mjs', '--workload', 'fs,./examples/custom-workload.mjs', '--workers', '2', '--duration', '1s', '--json', '--out', join(tmp, 'stress')]);
    expect(r.status, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    const run = result.runs[0];
    expect(run.name).toBe('reserve-deadline');
    expect(run.failure).toBeNull();
    expect(run.workloads.requests.ok).toBeGreaterThan(0);
    expect(run.workloads.fs.ok).toBeGreaterThan(0);
  });
});
