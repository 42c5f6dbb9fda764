/**
 * The Fastify plugin's types (issue 15): compiles test/fixtures/fastify-types.ts
 * with the TypeScript compiler and expects no diagnostic. The fixture says
 * what must type-check (request.body: PoolBody on a `schema: { body:
 * poolBody }` route, route config, reply.sendPool, app.nofail) and, with
 * @ts-expect-error, what must not (any other body as a PoolBody, bad
 * config, a Buffer to sendPool); npm test builds only src/, so without
 * this test nothing would hold the fixture to it.
 */
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const fixture = fileURLToPath(new URL('../fixtures/fastify-types.ts', import.meta.url));

describe('Fastify plugin types', () => {
  it('request.body is a PoolBody exactly on poolBody routes; config, sendPool and app.nofail are typed', () => {
    const configPath = ts.findConfigFile(root, ts.sys.fileExists, 'tsconfig.json')!;
    const { config } = ts.readConfigFile(configPath, ts.sys.readFile);
    const { options } = ts.parseJsonConfigFileContent(config, ts.sys, root);
    const program = ts.createProgram([fixture], { ...options, noEmit: true, incremental: false });
    const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => d.file === undefined || d.file.fileName === fixture || d.file.fileName.includes('/src/service/'));
    const text = diagnostics.map((d) => {
      const where = d.file && d.start !== undefined ? `${d.file.fileName.slice(root.length)}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}` : '';
      return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
    expect(text).toEqual([]);
  }, 60_000);
});
