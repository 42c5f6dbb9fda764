// Loads the naive baseline pool (bench/naive/naive_pool.cc), built by the
// "naive_pool" target of binding.gyp. Returns null when it was not built,
// so a case can report itself skipped instead of failing the run.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const NAIVE_PATH = fileURLToPath(new URL('../../build/Release/naive_pool.node', import.meta.url));
export const NAIVE_MISSING = 'build/Release/naive_pool.node is missing: run `npm install` or `npm run build`';

export function loadNaive() {
  if (!existsSync(NAIVE_PATH)) return null;
  return createRequire(import.meta.url)(NAIVE_PATH);
}
