// The body of one worker in the scaling case (cases/workers.mjs). It builds
// its loop once, then for each round: says it is ready, waits for GO, runs
// the loop in chunks until STOP, and reports its operations and time.
import { parentPort, workerData } from 'node:worker_threads';
import { Pool } from '../../dist/index.js';
import { baselines, computeLoop, naiveLoop, nofailLoop } from './ops.mjs';
import { CTL } from './workers-ctl.mjs';

const { impl, handle, naiveId, control } = workerData;
const ctl = new Int32Array(control);
const CHUNK = 256;

let run;
if (impl === 'nofail') run = nofailLoop(Pool.attach(handle));
else if (impl === 'naive') run = naiveLoop(naiveId);
else if (impl === 'Buffer.allocUnsafe') run = baselines[impl];
else if (impl === 'compute') run = computeLoop;
else throw new Error(`unknown impl ${impl}`);

parentPort.on('message', ({ round }) => {
  if (round < 0) {
    parentPort.close();
    return;
  }
  parentPort.postMessage({ ready: round });
  while (Atomics.load(ctl, CTL.GO) < round) Atomics.wait(ctl, CTL.GO, round - 1, 50);
  let ops = 0;
  const t0 = process.hrtime.bigint();
  while (Atomics.load(ctl, CTL.STOP) < round) {
    run(CHUNK);
    ops += CHUNK;
  }
  // hrtime is one monotonic clock for every thread of the process, so the
  // main thread can place all workers' intervals on one time line.
  parentPort.postMessage({ round, ops, t0, t1: process.hrtime.bigint() });
});
