// Baselines for the alloc+free cases, measured in the same run: allocate a
// 4 KiB buffer, write one byte, let the GC free it.
//   --kind Buffer.allocUnsafe | Buffer.allocUnsafeSlow | 'new ArrayBuffer'
import { emit, measure, parseArgs } from '../lib/measure.mjs';
import { baselines } from '../lib/ops.mjs';

const opts = parseArgs();
const kind = opts.kind ?? 'Buffer.allocUnsafe';
const run = baselines[kind];
if (!run) throw new Error(`unknown --kind ${kind}; one of ${Object.keys(baselines).join(', ')}`);
emit({ case: `baseline/${kind}`, ...measure(run, opts) });
