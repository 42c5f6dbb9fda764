// A watermark reservation taken and released while memory is plentiful —
// Chinner's claim that a reservation costs next to nothing then.
import { Pool } from '../../dist/index.js';
import { emit, measure, parseArgs } from '../lib/measure.mjs';

const opts = parseArgs();
const pool = Pool.create({ size: '64MiB' });
const run = (n) => {
  for (let i = 0; i < n; i++) pool.reserve(16).release();
};
emit({ case: 'reserve/take+release', ...measure(run, opts) });
