/**
 * The layer rules of src/ (ARCHITECTURE.md), checked by dependency-cruiser
 * in `npm test` (scripts/test.mjs runs `npm run lint:layers`). Type-only
 * imports count too (tsPreCompilationDeps), so a rule cannot be dodged with
 * `import type`.
 *
 *   errors.ts, validators.ts   leaves: import nothing of src/ but each other
 *   binding/                   the addon: only native.ts loads it
 *   mm/                        the allocator: binding/ and the leaves
 *   lib/, service/             mm/ only through mm/index.ts (public) and
 *                              mm/internal.ts (the one internal surface)
 *   lab/, cli/                 the package's public API (src/index.ts) only
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No import cycles: a cycle makes load order (and so a layer) a matter of luck.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'leaves-import-nothing',
      severity: 'error',
      comment: 'errors.ts and validators.ts are used by every layer, so they may use none.',
      from: { path: '^src/(errors|validators)\\.ts$' },
      to: { path: '^src/', pathNot: '^src/(errors|validators)\\.ts$' },
    },
    {
      name: 'binding-is-the-bottom',
      severity: 'error',
      comment: 'binding/ is the layer under the allocator: it may not import it or anything above.',
      from: { path: '^src/binding/' },
      to: { path: '^src/(mm|lib|service|lab|cli)/|^src/index\\.ts$' },
    },
    {
      name: 'only-binding-loads-the-addon',
      severity: 'error',
      comment: 'src/binding/native.ts is the one module that loads the .node file.',
      from: { pathNot: '^src/binding/native\\.ts$' },
      to: { path: '\\.node$|node-gyp-build' },
    },
    {
      name: 'mm-does-not-import-upward',
      severity: 'error',
      comment: 'The allocator imports nothing built on it: not lib/, service/, lab/, cli/ or the package index.',
      from: { path: '^src/mm/' },
      to: { path: '^src/(lib|service|lab|cli)/|^src/index\\.ts$' },
    },
    {
      name: 'lib-and-service-use-mm-through-its-surfaces',
      severity: 'error',
      comment: 'lib/ and service/ see the allocator through mm/index.ts (public) and mm/internal.ts (declared internal), never a module of mm/ directly, nor the addon.',
      from: { path: '^src/(lib|service)/' },
      to: { path: '^src/(mm|binding)/', pathNot: '^src/mm/(index|internal)\\.ts$' },
    },
    {
      name: 'lib-does-not-import-service',
      severity: 'error',
      comment: 'The libraries sit under the service layer.',
      from: { path: '^src/lib/' },
      to: { path: '^src/(service|lab|cli)/|^src/index\\.ts$' },
    },
    {
      name: 'service-does-not-import-lab',
      severity: 'error',
      from: { path: '^src/service/' },
      to: { path: '^src/(lab|cli)/|^src/index\\.ts$' },
    },
    {
      name: 'lab-and-cli-use-the-public-api',
      severity: 'error',
      comment: 'The lab is written against what users get: src/index.ts, nothing deeper.',
      from: { path: '^src/(lab|cli)/' },
      to: { path: '^src/(mm|lib|service|binding)/|^src/(errors|validators)\\.ts$' },
    },
    {
      name: 'lab-does-not-import-cli',
      severity: 'error',
      from: { path: '^src/lab/' },
      to: { path: '^src/cli/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.build.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
