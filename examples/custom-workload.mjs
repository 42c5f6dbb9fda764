// A workload of your own for the nofail lab: an HTTP-ish service that
// reads each request body into GFP_KERNEL pages, keeps it while the request
// is in flight (a few operations), and logs every request to the lab's
// filesystem — a small transaction under the fs lock, allocated by
// whichever policy runs.
//
//   npx nofail stress --policy loop --workload fs,net,user,./examples/custom-workload.mjs,hog
//   npx nofail compare --workload fs,./examples/custom-workload.mjs,hog --workers 4
//
// The interface (src/lab/api.ts, LabWorkload): name, summary, schedule,
// plan, start, and an optional oomScoreAdj. The built-in workloads are
// written against the same interface (src/lab/workloads/).
import { GFP } from 'nofail';

/** @type {import('nofail/lab').LabWorkload<{ pages: number, keepFor: number }>} */
export default {
  name: 'requests',
  summary: 'request bodies of 1 to 16 GFP_KERNEL pages, each kept for 1 to 4 operations and logged to the filesystem',
  // One request every 3 ms, from the start of the run.
  schedule: () => ({ intervalMs: 3 }),
  // Operation i: a pure function of the random stream — the same --seed
  // gives the same requests on any machine.
  plan: (rng) => ({ pages: rng.int(1, 16), keepFor: rng.int(1, 4) }),
  start(ctx) {
    const pool = ctx.pool;
    /** Requests in flight: their pages and the op after which they end. */
    const inFlight = [];
    let op = 0;
    const finish = (upTo) => {
      while (inFlight.length > 0 && inFlight[0].until <= upTo) for (const p of inFlight.shift().pages) pool.free(p);
    };
    const held = () => ctx.held(inFlight.reduce((n, r) => n + r.pages.length, 0));
    const log = (tx) => {
      const page = ctx.timed(() => tx.logPage());
      page.bytes[0] = op & 0xff;
      tx.freeLog(page);
    };
    return {
      run({ pages, keepFor }) {
        op++;
        finish(op);
        const body = [];
        try {
          // ctx.timed: the lab times the call and shows it as in flight while it runs.
          for (let i = 0; i < pages; i++) body.push(ctx.timed(() => pool.alloc(GFP.KERNEL)));
        } catch (e) {
          for (const p of body) pool.free(p);
          held();
          if (e.code === 'ENOMEM') return 'failed';
          throw e;
        }
        inFlight.push({ pages: body, until: op + keepFor });
        held();
        // 'ok', or what the filesystem made of it ('failed', 'refused').
        return ctx.fs.transaction(2, log);
      },
      close() {
        finish(Infinity);
        held();
      },
    };
  },
};
