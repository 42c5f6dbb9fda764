// Order-0 alloc+free on one thread, through the public API, with a write of
// one byte through the page's view.
//   --impl nofail | nofail-nobytes | naive   (default nofail)
import { Pool } from '../../dist/index.js';
import { emit, measure, parseArgs } from '../lib/measure.mjs';
import { loadNaive, NAIVE_MISSING } from '../lib/naive.mjs';
import { naiveLoop, nofailLoop } from '../lib/ops.mjs';

const opts = parseArgs();
const impl = opts.impl ?? 'nofail';
let run;
if (impl === 'nofail' || impl === 'nofail-nobytes') {
  const pool = Pool.create({ size: '64MiB' });
  run = nofailLoop(pool, { bytes: impl === 'nofail' });
} else if (impl === 'naive') {
  const naive = loadNaive();
  if (naive === null) {
    emit({ case: `alloc-free/${impl}`, skipped: NAIVE_MISSING });
    process.exit(0);
  }
  run = naiveLoop(naive.create(16384));
} else {
  throw new Error(`unknown --impl ${impl}`);
}
emit({ case: `alloc-free/${impl}`, ...measure(run, opts) });
