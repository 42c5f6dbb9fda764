// Loads the naive baseline pool (bench/naive/naive_pool.cc). It is a
// benchmark's addon, not the package's: `npm run build:bench-naive` builds it
// from bench/naive/binding.gyp into bench/naive/build/Release/. (An older
// checkout built it with the package, into build/Release/: found there too.)
// Returns null when it was not built, so a case reports itself skipped
// instead of failing the run.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const PATHS = ['../naive/build/Release/naive_pool.node', '../../build/Release/naive_pool.node'].map((p) => fileURLToPath(new URL(p, import.meta.url)));
export const NAIVE_MISSING = 'the naive pool addon is not built: run `npm run build:bench-naive` (node-gyp rebuild -C bench/naive)';

export function loadNaive() {
  const path = PATHS.find((p) => existsSync(p));
  return path === undefined ? null : createRequire(import.meta.url)(path);
}
