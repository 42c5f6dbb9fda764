/**
 * Native entry points are safe against arrays that change under them
 * (STYLE habit 3). A typed array over a SharedArrayBuffer can be written by
 * another thread while native code reads it; an entry point that checks an
 * element and reads it again, or writes results and reads them back, then
 * uses a value nobody checked — as an index into page metadata.
 *
 * The fixture calls allocBulk (out), freeBulk (refs), stats (out) and
 * attach (control) 10,000 times each through the raw addon while a worker
 * scribbles on the same array, in a child process because the failure
 * this guards against is a SIGSEGV.
 *
 * Regression test (fixed): native/core/zone.cc allocBulkLocked kept the pfns it
 * took in `out` and read them back as metadata indices, so the child died
 * with SIGSEGV in the allocBulk phase; Pool::freeBulk validated refs[i] and
 * then read it again to free it. Now allocBulk only writes `out`, and
 * freeBulk copies `refs` once and frees from the copy.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const CALLS = 10_000;
const TOTAL = 4096;

it('allocBulk, freeBulk, stats and attach survive a worker scribbling on their arrays', () => {
  const fixture = fileURLToPath(new URL('../../fixtures/sab-scribble.mjs', import.meta.url));
  const dist = fileURLToPath(new URL('../../../dist/binding/native.js', import.meta.url));
  expect(existsSync(dist), 'run `npx tsc -p tsconfig.build.json` first').toBe(true);
  const r = spawnSync(process.execPath, [fixture], { encoding: 'utf8', timeout: 170_000 });
  expect({ status: r.status, signal: r.signal, stderr: r.stderr.slice(-1000) }).toEqual({
    status: 0,
    signal: null,
    stderr: '',
  });
  const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  expect(summary.calls).toEqual({ allocBulk: CALLS, freeBulk: CALLS, stats: CALLS, attach: CALLS });
  // Every call left the accounting exact: pages allocated == pages the task
  // owns afterwards, pages freed + pages left == pages it had.
  expect(summary.mismatches).toEqual({ allocBulk: 0, freeBulk: 0, stats: 0, attach: 0 });
  // Only the typed refusals of a bad ref, and no more of them than calls.
  for (const [code, n] of Object.entries(summary.refused)) {
    expect(['ERR_BAD_PAGE', 'ERR_OUT_OF_RANGE', 'ERR_DOUBLE_FREE']).toContain(code);
    expect(n).toBeLessThanOrEqual(CALLS);
  }
  expect(summary.check).toBeNull();
  expect(summary.leftOver).toBe(0);
  expect(summary.accounting).toEqual({ free: TOTAL, cached: 0, allocated: 0, total: TOTAL });
  expect(summary.control).toEqual({ check: null, addsUp: true, free: TOTAL, allocated: 0, total: TOTAL });
}, 180_000);
