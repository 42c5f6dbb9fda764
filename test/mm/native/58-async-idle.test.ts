/**
 * allocAsync / reserveAsync in a thread with nothing else to do: neither
 * Atomics.waitAsync nor AbortSignal.timeout() keeps the event loop alive,
 * so without wait.ts's keep-alive timer the process would exit in the
 * middle of the wait (code 13, an unsettled top-level await) instead of
 * reaching the TimeoutError. Runs in a child process against dist/.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { requireDist } from '../../fixtures/workers.js';

const dist = fileURLToPath(new URL('../../../dist/index.js', import.meta.url));

describe('async waits in an otherwise idle process', () => {
  it('time out with a TimeoutError instead of the process exiting mid-wait', () => {
    requireDist();
    const script = `
      import { GFP, Pool } from ${JSON.stringify(dist)};
      const pool = Pool.create({ size: '1MiB' });
      const held = [];
      try { for (;;) held.push(pool.alloc(GFP.NOWAIT)); } catch {}
      for (const f of [() => pool.allocAsync(GFP.KERNEL, 0, { timeoutMs: 120 }), () => pool.reserveAsync(10, { timeoutMs: 170 })]) {
        try { await f(); console.log('resolved'); } catch (e) { console.log(e.name); }
      }
      // And a wait that memory freed later ends.
      setTimeout(() => held.splice(0, 40).forEach((p) => pool.free(p)), 50);
      const r = await pool.reserveAsync(10, { timeoutMs: 5000 });
      console.log('reserved', r.pages);
      r.release();
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stdout.trim().split('\n'), r.stderr).toEqual(['TimeoutError', 'TimeoutError', 'reserved 10']);
    expect(r.status).toBe(0);
  });
});
