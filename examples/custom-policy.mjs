// A policy of your own for the nofail lab: a watermark reservation with a
// deadline. Before the filesystem takes its lock, reserve the transaction's
// worst case; if memory does not come back within 20 ms, refuse the
// transaction (nothing has changed, the filesystem stays writable, the
// caller tries again later) instead of waiting for as long as it takes.
// Inside the transaction, allocations draw on the reservation.
//
//   npx nofail compare --policy ./examples/custom-policy.mjs
//   npx nofail stress --policy ./examples/custom-policy.mjs
//
// The interface (src/lab/api.ts, LabPolicy): name, summary, system, pool,
// fs(ctx) and an optional setup(ctx). The built-in policies are written
// against the same interface (src/lab/policies/); reserve.ts is the one
// this varies.
import { GFP } from 'nofail';

/** How long a transaction waits for its reservation before it gives up. */
const DEADLINE_MS = 20;

/** @type {import('nofail/lab').LabPolicy} */
export default {
  name: 'reserve-deadline',
  summary: `reserves the worst case before the fs lock, and refuses the transaction if that takes over ${DEADLINE_MS} ms`,
  system: 'linux-3.19 (NOFS may fail), OOM killer without reaper',
  pool: { behavior: 'linux-3.19', oom: { reaper: false } },
  fs(ctx) {
    const pool = ctx.pool;
    let current = null;
    // Inside the reservation's run() scope, GFP.RESERVE allocations may use it.
    const tx = {
      cache: (_willAllocate, fn) => fn(GFP.NOFS | GFP.RESERVE),
      logPage: () => pool.alloc(GFP.NOFS | GFP.RESERVE),
      freeLog: (page) => pool.free(page),
    };
    return {
      transaction(worst, body) {
        let reservation;
        try {
          reservation = pool.reserve(worst, { timeoutMs: DEADLINE_MS });
        } catch (e) {
          if (e.name === 'TimeoutError') ctx.refuse(`no ${worst} pages within ${DEADLINE_MS} ms`);
          throw e;
        }
        current = reservation;
        try {
          return reservation.run(() => body(tx));
        } finally {
          current = null;
          reservation.release();
        }
      },
      // Reserved and not used yet: what the report's `idle` column sums up.
      idle: () => current?.remaining ?? 0,
    };
  },
};
