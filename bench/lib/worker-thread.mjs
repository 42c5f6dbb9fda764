// The body of one worker of cases/workers.mjs. It builds its loop once
// (lib/worker-loops.mjs), then for each round: says it is ready, waits for
// GO, runs the loop in chunks until STOP, and reports the pages it completed
// and its time.
import { parentPort, workerData } from 'node:worker_threads';
import { computeLoop, handoffEnds, handoffLoop, Ring, workerPeer, workingSetLoop } from './worker-loops.mjs';
import { CTL } from './workers-ctl.mjs';

const { impl, pattern, role, index, workers, control, rings, ports } = workerData;
const ctl = new Int32Array(control);
const CHUNK = 256;
let round = 0;
const stopped = () => Atomics.load(ctl, CTL.STOP) >= round;

let run;
if (impl === 'compute') run = computeLoop;
else if (pattern === 'working-set') run = workingSetLoop(workerPeer(impl, workerData), stopped);
else if (pattern === 'handoff') {
  // ring: worker i writes ring i and reads ring i-1. split: producer i
  // writes ring i, consumer N/2 + i reads it.
  const half = workers / 2;
  const out = role === 'consumer' ? null : new Ring(rings[index]);
  const inp = role === 'ring' ? new Ring(rings[(index + workers - 1) % workers]) : role === 'consumer' ? new Ring(rings[index - half]) : null;
  run = handoffLoop(handoffEnds(impl, workerData, ports), role, out, inp, stopped);
} else throw new Error(`unknown pattern ${pattern}`);

parentPort.on('message', (m) => {
  if (m.round < 0) {
    parentPort.close();
    ports?.in?.close();
    ports?.out?.close();
    return;
  }
  round = m.round;
  parentPort.postMessage({ ready: round });
  while (Atomics.load(ctl, CTL.GO) < round) Atomics.wait(ctl, CTL.GO, round - 1, 50);
  let pages = 0;
  const t0 = process.hrtime.bigint();
  // The first round is the warm-up: it also lasts until the loop is ready
  // (the working set has timed both its phases).
  while (!stopped() || (round === 1 && run.ready?.() === false)) pages += run(CHUNK);
  // hrtime is one monotonic clock for every thread of the process, so the
  // main thread can place all workers' intervals on one time line.
  parentPort.postMessage({ round, pages, t0, t1: process.hrtime.bigint() });
});
