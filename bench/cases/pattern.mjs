// One allocation pattern (lib/patterns.mjs) run by one allocator
// (lib/peers.mjs), on one thread: ns per allocation, each with its free and
// one byte written through the block's view.
//   --pattern hot | burst | random   --impl <peer>
//   burst: --n <pages> --free lifo|fifo      random: --live <pages>
import { emit, measure, parseArgs } from '../lib/measure.mjs';
import { NAIVE_MISSING } from '../lib/naive.mjs';
import { makePattern, patternNeeds } from '../lib/patterns.mjs';
import { makePeer } from '../lib/peers.mjs';

const opts = parseArgs();
const spec = { pattern: opts.pattern ?? 'hot', n: Number(opts.n ?? 512), free: opts.free ?? 'lifo', live: Number(opts.live ?? 1000) };
const implName = opts.impl ?? 'nofail';
const name = `pattern/${spec.pattern}/${implName}`;
const impl = makePeer(implName, patternNeeds(spec));
if (impl === null) {
  emit({ case: name, skipped: NAIVE_MISSING });
  process.exit(0);
}
const pattern = makePattern(spec, impl);
const before = impl.pool?.stats().counters;
const r = measure(pattern.run, { ...opts, opsPerCall: pattern.opsPerCall });
const extra = {};
if (before) {
  // How much of the traffic reached the shared zone (native pgalloc +
  // pgfree) rather than staying in the thread's page cache, per op. Over
  // the whole run, warm-up included.
  const after = impl.pool.stats();
  const ops = r.totalOps;
  extra.zonePagesPerOp = ops ? (after.counters.pgalloc - before.pgalloc + after.counters.pgfree - before.pgfree) / ops : undefined;
}
emit({ case: name, ...r, ...extra });
