#!/usr/bin/env node
// `npm run test:package` (run by .ci/run; it needs the npm registry for the
// package's dependencies): what a user gets from the tarball.
//   1. npm pack (prepack builds dist/ and the linux-x64 prebuild);
//   2. install the tarball into an empty ESM app with --omit=dev and
//      --ignore-scripts: nothing is compiled, the prebuild must load;
//   3. run the README's example there, as written, and check what it prints;
//   4. type-check a strict `nodenext` TypeScript consumer of the main API and
//      both subpaths (with the optional peers they need installed);
//   5. check what the tarball holds: the files a user needs, nothing else.
// Prints one line per check and a closing "N passed, N failed".
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const work = mkdtempSync(join(tmpdir(), 'nofail-package-'));
let passed = 0;
let failed = 0;
function check(name, fn) {
  try {
    const note = fn();
    console.log(`ok   ${name}${note ? ` (${note})` : ''}`);
    passed++;
  } catch (e) {
    console.log(`FAIL ${name}\n${String(e.stdout ?? '')}${String(e.stderr ?? '')}${e.message}`);
    failed++;
  }
}
const sh = (cmd, args, cwd, env = {}) =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });

let tarball = '';
let files = [];
check('npm pack', () => {
  // prepack (dist/ and the prebuild) first, on its own: its build output would mix with pack's JSON.
  sh('npm', ['run', 'prepack'], root);
  const out = JSON.parse(sh('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], root));
  tarball = join(work, out[0].filename);
  files = out[0].files.map((f) => f.path);
  return `${out[0].filename}: ${(out[0].size / 1024).toFixed(0)} kB, ${out[0].entryCount} files`;
});

check('the tarball holds what users need and nothing else', () => {
  const need = ['LICENSE', 'README.md', 'package.json', 'binding.gyp', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', `prebuilds/linux-x64/${pkg.name}.glibc.node`];
  for (const f of need) if (!files.includes(f)) throw new Error(`missing ${f}`);
  const unwanted = files.filter((f) => /^(test|bench|scripts|src)\/|^native\/test\/|\.map$|^CMakeLists\.txt$|^\.|\.test\./.test(f));
  if (unwanted.length) throw new Error(`should not ship: ${unwanted.join(', ')}`);
  for (const field of ['license', 'keywords', 'engines', 'exports', 'types']) if (pkg[field] === undefined) throw new Error(`package.json has no ${field}`);
});

const app = join(work, 'app');
mkdirSync(app);
writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }, null, 2));
check('npm install <tarball> --omit=dev --ignore-scripts (no compiler runs)', () => {
  sh('npm', ['install', tarball, '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], app);
  const installed = sh('npm', ['ls', '--omit=dev', '--all', '--parseable'], app).split('\n').filter(Boolean).length;
  return `${installed - 1} packages`;
});

check("the README's example prints what it promises, on the prebuild", () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const m = /```js\n(\/\/ example\.mjs\n[\s\S]*?)```/.exec(readme);
  if (!m) throw new Error('README has no ```js block starting with // example.mjs');
  writeFileSync(join(app, 'example.mjs'), m[1]);
  // PREBUILDS_ONLY: node-gyp-build may load nothing but a prebuild.
  const out = sh(process.execPath, ['example.mjs'], app, { PREBUILDS_ONLY: '1' });
  const promised = /prints `([^`]+)`/.exec(readme.slice(m.index))?.[1];
  if (!promised) throw new Error('README does not say what the example prints');
  if (out.trim() !== promised) throw new Error(`printed ${JSON.stringify(out.trim())}, README promises ${JSON.stringify(promised)}`);
  return out.trim();
});

check('npx nofail --version and --help', () => {
  const v = sh('npx', ['--no-install', 'nofail', '--version'], app).trim();
  if (v !== pkg.version) throw new Error(`--version printed ${v}`);
  const help = sh('npx', ['--no-install', 'nofail', '--help'], app);
  if (!/--quick/.test(help)) throw new Error('--help does not show the default command\'s --quick');
  return v;
});

check('a strict nodenext TypeScript consumer of nofail, nofail/fastify and nofail/prom-client type-checks', () => {
  const dev = pkg.devDependencies;
  sh('npm', ['install', '--no-audit', '--no-fund', '--no-save', `typescript@${dev.typescript}`, `@types/node@${dev['@types/node']}`, `fastify@${dev.fastify}`, `prom-client@${dev['prom-client']}`], app);
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', noEmit: true, types: ['node'], skipLibCheck: false }, files: ['consumer.ts'] }, null, 2),
  );
  writeFileSync(
    join(app, 'consumer.ts'),
    `import { GFP, Pool, PoolCache, LoadShedder, metricsOf, type Page, type PoolStats } from 'nofail';
import nofailFastify from 'nofail/fastify';
import { collectPoolMetrics } from 'nofail/prom-client';
import Fastify from 'fastify';
import { Registry } from 'prom-client';

const pool = Pool.create({ size: '16MiB' });
const page: Page = pool.alloc(GFP.KERNEL);
page.bytes[0] = 1;
pool.free(page);
const s: PoolStats = pool.stats();
const total: number = s.freePages + s.cachedPages + s.allocatedPages;
const cache = new PoolCache(pool, { maxBytes: '1MiB' });
cache.set('k', 'v');
const shed = new LoadShedder(pool, { policy: 'reserve' });
const text: string = metricsOf(pool);
const app = Fastify();
await app.register(nofailFastify, { pool });
await collectPoolMetrics(pool, { registry: new Registry() });
// @ts-expect-error the Page constructor is private
new (await import('nofail')).Page();
export { total, shed, text };
`,
  );
  sh(join(app, 'node_modules', '.bin', 'tsc'), ['-p', '.'], app);
});

rmSync(work, { recursive: true, force: true });
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
