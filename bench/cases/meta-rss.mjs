// Per-page metadata overhead: the resident memory an idle pool costs beyond
// its (untouched, MAP_NORESERVE) data pages. Reads VmRSS from
// /proc/self/status before and after creating an idle pool of --size
// (default 1 GiB), after warming up the code paths with a small pool.
import { readFileSync } from 'node:fs';
import { Pool } from '../../dist/index.js';
import { emit, parseArgs } from '../lib/measure.mjs';

const opts = parseArgs();
const size = opts.size ?? '1GiB';

function rssKiB() {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  if (!m) throw new Error('no VmRSS in /proc/self/status');
  return Number(m[1]);
}

Pool.create({ size: '1MiB' }).close();
globalThis.gc?.();
const before = rssKiB();
const pool = Pool.create({ size });
const after = rssKiB();
const stats = pool.stats();
const poolBytes = stats.totalPages * 4096;
const overheadBytes = (after - before) * 1024;
emit({
  case: 'meta/idle-pool-rss',
  unit: '%',
  median: (100 * overheadBytes) / poolBytes,
  poolBytes,
  totalPages: stats.totalPages,
  rssBeforeKiB: before,
  rssAfterKiB: after,
  overheadBytes,
  bytesPerPage: overheadBytes / stats.totalPages,
});
pool.close();
