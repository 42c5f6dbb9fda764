// One case of bench/ab.mjs in a fresh process, against the package built
// under `root` (its dist/ and build/): prints one JSON line.
//   node bench/lib/ab-child.mjs <root> <case> [--quick]
import { pathToFileURL } from 'node:url';
import { join, resolve } from 'node:path';
import { measure } from './measure.mjs';

const [root, name] = process.argv.slice(2);
const quick = process.argv.includes('--quick');
const { GFP, Pool } = await import(pathToFileURL(join(resolve(root), 'dist/index.js')).href);
const pool = Pool.create({ size: '64MiB' });

// Each case writes one byte per page, as a caller that uses its pages does.
const CASES = {
  /** One page recycled through the page cache: alloc, write, free. */
  hot: [1, (n) => {
    for (let i = 0; i < n; i++) {
      const p = pool.alloc();
      p.bytes[0] = i;
      pool.free(p);
    }
  }],
  /** A burst of 512 pages held, then freed (a request body): per page. */
  burst512: [512, (n) => {
    const held = new Array(512);
    for (let r = 0; r < n; r++) {
      for (let i = 0; i < 512; i++) (held[i] = pool.alloc()).bytes[0] = i;
      for (let i = 0; i < 512; i++) pool.free(held[i]);
    }
  }],
  /** allocBulk(64) + freeBulk: per page. */
  bulk64: [64, (n) => {
    for (let r = 0; r < n; r++) {
      const pages = pool.allocBulk(64, GFP.KERNEL);
      for (const p of pages) p.bytes[0] = r;
      pool.freeBulk(pages);
    }
  }],
  /** A watermark reservation taken and released while memory is plentiful. */
  reserve: [1, (n) => {
    for (let i = 0; i < n; i++) pool.reserve(1).release();
  }],
};
const c = CASES[name];
if (c === undefined) throw new Error(`unknown case ${name}; cases: ${Object.keys(CASES).join(', ')}`);
const [perCall, run] = c;
console.log(JSON.stringify({ case: name, ...measure(run, { quick, opsPerCall: perCall }) }));
pool.close();
