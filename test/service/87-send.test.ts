/**
 * Responses from pool pages, and the connection dying at every step of a
 * body's life: sendPages (node:http) and reply.sendPool (Fastify) write a
 * pinned entry or a body without a copy and release it exactly once — on
 * finish, on error, when the connection dies mid-response, at once when it
 * was already dead, and when the head cannot be written; and a body whose
 * client goes away while its pages are found, while it uploads, or after
 * it was read is given back, while one a cache adopted stays the cache's.
 * Real servers on loopback; every test ends with the pool adding up.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { type CacheRef, GFP, LoadShedder, PAGE_SIZE, Pool, PoolBody, PoolCache, readPoolBody } from '../../src/index.js';
import nofailFastify, { poolBody } from '../../src/service/fastify.js';
import { sendPages } from '../../src/service/http.js';
import { expectAccounting, expectCode } from '../fixtures/expect.js';
import { takeAll } from '../fixtures/pool.js';
import { until } from '../fixtures/workers.js';

let pool: Pool;
let server: Server | undefined;
let app: FastifyInstance | undefined;
afterEach(async () => {
  if (server) {
    server.closeAllConnections();
    await new Promise((r) => server!.close(r));
  }
  server = undefined;
  await app?.close();
  app = undefined;
  pool?.close();
});

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const payload = (n: number, seed = 1) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) & 255));

/** A real CacheRef that counts its release() calls (and passes them on). */
function counted(ref: CacheRef): CacheRef & { calls: number } {
  const c = {
    calls: 0,
    size: ref.size,
    buffers: ref.buffers,
    meta: ref.meta,
    get released() {
      return ref.released;
    },
    release() {
      c.calls++;
      ref.release();
    },
  };
  return c;
}

/** Starts `handler` on a node:http server; resolves with its base URL. */
async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ port: number; url: string }> {
  server = createServer(handler);
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { port, url: `http://127.0.0.1:${port}` };
}

/**
 * A GET whose client reads the head and then nothing: the response cannot
 * finish. destroy() closes the connection; reset() resets it (RST), which
 * the server sees as a write error — then no 'finish' comes, only 'close'.
 */
function stalledGet(port: number, path = '/'): Promise<{ status: number; destroy: () => void; reset: () => void }> {
  return new Promise((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', path }, (res) => {
      res.pause();
      resolve({ status: res.statusCode!, destroy: () => req.destroy(), reset: () => req.socket!.resetAndDestroy() });
    });
    req.on('error', () => {});
    req.on('close', () => reject(new Error('closed before the head')));
    req.end();
  });
}

describe('sendPages (node:http)', () => {
  it('writes a pinned entry from its pages with its length, and releases it once when the response finishes', async () => {
    pool = Pool.create({ size: '1MiB', poison: true });
    const cache = new PoolCache(pool, { maxBytes: '512KiB' });
    const v = payload(5 * PAGE_SIZE + 17);
    cache.set('k', v, { sha: sha(v) });
    let ref: ReturnType<typeof counted> | undefined;
    let res!: ServerResponse;
    const { url } = await serve((_req, r) => {
      res = r;
      ref = counted(cache.acquire('k')!);
      // Replaced while being sent: the old pages stay the response's.
      cache.set('k', 'new value');
      sendPages(r, ref, { headers: { 'x-checksum': (ref.meta as { sha: string }).sha } });
    });
    const got = await fetch(url);
    expect(got.headers.get('content-length')).toBe(String(v.length));
    expect(got.headers.get('content-type')).toBe('application/octet-stream');
    expect(got.headers.get('x-checksum')).toBe(sha(v));
    expect(Buffer.from(await got.arrayBuffer()).equals(v)).toBe(true);
    await until(() => ref?.released === true);
    // 'close' follows 'finish': still one release.
    await until(() => res.closed);
    expect(ref!.calls).toBe(1);
    expect(cache.stats().pinnedEvictedPages).toBe(0);
    cache.close();
    expectAccounting(pool, 0);
  });

  for (const how of ['closed', 'reset'] as const) {
    it(`releases once when the connection is ${how} in the middle of the response`, async () => {
      // Larger than what loopback's socket buffers hold (a few MiB), so the
      // response is still being written when the client goes.
      pool = Pool.create({ size: '32MiB' });
      const cache = new PoolCache(pool, { maxBytes: '32MiB' });
      cache.set('big', Buffer.alloc(24 << 20, 7));
      let ref: ReturnType<typeof counted> | undefined;
      let res!: ServerResponse;
      const { port } = await serve((_req, r) => {
        res = r;
        ref = counted(cache.acquire('big')!);
        cache.delete('big');
        sendPages(r, ref);
      });
      const client = await stalledGet(port);
      expect(client.status).toBe(200);
      expect(res.writableFinished).toBe(false); // mid-response
      expect(ref!.calls).toBe(0);
      expect(cache.stats().pinnedEvictedPages).toBe(6144);
      if (how === 'reset') client.reset();
      else client.destroy();
      await until(() => ref!.calls > 0);
      await until(() => res.closed);
      expect(ref!.calls).toBe(1);
      expect(cache.stats().pages).toBe(0);
      cache.close();
      expectAccounting(pool, 0);
    });
  }

  it('releases once when the response is destroyed with an error mid-write', async () => {
    pool = Pool.create({ size: '32MiB' });
    const cache = new PoolCache(pool, { maxBytes: '32MiB' });
    cache.set('big', Buffer.alloc(24 << 20, 3));
    let ref: ReturnType<typeof counted> | undefined;
    let res!: ServerResponse;
    const { port } = await serve((_req, r) => {
      res = r;
      r.on('error', () => {});
      ref = counted(cache.acquire('big')!);
      sendPages(r, ref);
    });
    const client = await stalledGet(port);
    expect(res.writableFinished).toBe(false);
    res.destroy(new Error('the handler gave up'));
    await until(() => ref!.calls > 0);
    await until(() => res.closed);
    expect(ref!.calls).toBe(1);
    client.destroy();
    cache.close();
    expectAccounting(pool, 0);
  });

  it('releases at once when the connection is already gone, and when the head cannot be written', async () => {
    pool = Pool.create({ size: '1MiB' });
    const cache = new PoolCache(pool, { maxBytes: '512KiB' });
    cache.set('k', payload(3 * PAGE_SIZE));
    const seen: { calls: number; threw?: string }[] = [];
    let entered = 0;
    const { port } = await serve((req, res) => {
      entered++;
      if (req.url === '/gone') {
        // The client has left by the time the answer is ready.
        res.once('close', () => {
          const ref = counted(cache.acquire('k')!);
          sendPages(res, ref);
          seen.push({ calls: ref.calls });
        });
        return;
      }
      res.writeHead(200).flushHeaders();
      const ref = counted(cache.acquire('k')!);
      try {
        sendPages(res, ref);
      } catch (err) {
        seen.push({ calls: ref.calls, threw: (err as { code?: string }).code });
      }
      res.end();
    });
    const gone = request({ port, host: '127.0.0.1', path: '/gone' });
    gone.on('error', () => {});
    gone.end();
    await until(() => entered === 1);
    gone.destroy();
    await until(() => seen.length === 1);
    expect(seen[0]).toEqual({ calls: 1 });
    await fetch(`http://127.0.0.1:${port}/twice`).then((r) => r.arrayBuffer());
    await until(() => seen.length === 2);
    expect(seen[1]).toEqual({ calls: 1, threw: 'ERR_HTTP_HEADERS_SENT' });
    expect(cache.stats()).toMatchObject({ entries: 1, pinnedEvictedPages: 0 });
    cache.close();
    expectAccounting(pool, 0);
  });

  it('sends a body back from the pages it was read into and frees it after; refuses what is not a page source', async () => {
    pool = Pool.create({ size: '1MiB', poison: true });
    const shed = new LoadShedder(pool, { minFree: false, psiSome: false, psiFull: false });
    const bodies: PoolBody[] = [];
    const { url } = await serve(async (req, res) => {
      const body = await readPoolBody(shed, req, res);
      if (body === null) return;
      bodies.push(body);
      expectCode(() => sendPages(res, { size: 1, buffers: 'no', release() {} } as never), 'ERR_INVALID_ARG_TYPE');
      sendPages(res, body, { status: 202, contentType: 'application/x-echo' });
    });
    const b = payload(7 * PAGE_SIZE + 1);
    const r = await fetch(url, { method: 'POST', body: b });
    expect([r.status, r.headers.get('content-type')]).toEqual([202, 'application/x-echo']);
    expect(Buffer.from(await r.arrayBuffer()).equals(b)).toBe(true);
    await until(() => bodies[0]?.state === 'freed');
    expect(shed.stats().bodyPages).toBe(0);
    expectAccounting(pool, 0);
  });
});

describe('a body whose connection dies at each step (node:http)', () => {
  it('while its pages are waited for, while it uploads, after it was read; an adopted body stays the cache’s', async () => {
    pool = Pool.create({ size: '1MiB' });
    const shed = new LoadShedder(pool, { policy: 'reserve', budgetMs: 10_000, minFree: false, psiSome: false, psiFull: false });
    const cache = new PoolCache(pool, { maxBytes: '512KiB' });
    const events: string[] = [];
    let handlerHold: Promise<void> = Promise.resolve();
    const { port } = await serve(async (req, res) => {
      const body = await readPoolBody(shed, req, res);
      events.push(body === null ? 'null' : 'body');
      if (body === null) return;
      await handlerHold;
      if (req.url === '/adopt') {
        cache.adopt('kept', body, { n: body.size });
        res.end('stored');
      } else {
        body.free();
        res.end('ok');
      }
    });
    const send = (path: string, length: number) => {
      const req = request({ port, host: '127.0.0.1', path, method: 'PUT', headers: { 'content-length': String(length) } });
      req.on('error', () => {});
      req.on('response', (r) => r.resume());
      return req;
    };
    // 1. While its pages are waited for: the pool is full; the client goes;
    //    the pages come (memory freed) and go straight back.
    const held = takeAll(pool, GFP.KERNEL | GFP.NORETRY | GFP.NOWARN);
    const waiting = send('/', 4 * PAGE_SIZE);
    waiting.write(payload(10));
    await until(() => pool.stats().vmstat.reserve_waits > 0);
    waiting.destroy();
    await new Promise((r) => setTimeout(r, 20));
    for (const p of held.splice(0)) pool.free(p);
    await until(() => events.length === 1);
    expect(events[0]).toBe('null');
    expect(shed.stats().bodyPages).toBe(0);
    expectAccounting(pool, 0);
    // 2. While it uploads: its pages were taken whole; they go back.
    const uploading = send('/', 8 * PAGE_SIZE);
    uploading.write(payload(PAGE_SIZE));
    await until(() => shed.stats().bodyPages === 8);
    uploading.destroy();
    await until(() => shed.stats().bodyPages === 0);
    await until(() => events.length === 2);
    expect(events).toEqual(['null', 'null']); // the handler never had it
    expectAccounting(pool, 0);
    // 3. After it was read, before the answer: the handler still frees it.
    let release!: () => void;
    handlerHold = new Promise((r) => (release = r));
    const read = send('/', 2 * PAGE_SIZE);
    read.end(payload(2 * PAGE_SIZE));
    await until(() => events.length === 3);
    expect(events[2]).toBe('body');
    read.destroy();
    release();
    await until(() => shed.stats().bodyPages === 0);
    expectAccounting(pool, 0);
    // 4. Adopted, then the connection dies: the pages are the cache's.
    handlerHold = Promise.resolve();
    const adopted = send('/adopt', 3 * PAGE_SIZE);
    adopted.end(payload(3 * PAGE_SIZE, 9));
    await until(() => cache.has('kept'));
    adopted.destroy();
    await new Promise((r) => setTimeout(r, 20));
    expect(cache.getEntry('kept')).toEqual({ value: payload(3 * PAGE_SIZE, 9), meta: { n: 3 * PAGE_SIZE } });
    expect(shed.stats().bodyPages).toBe(0);
    expectAccounting(pool, 3);
    cache.close();
    expectAccounting(pool, 0);
  });
});

describe('reply.sendPool (Fastify)', () => {
  async function kv(poolSize: string, cacheSize: string) {
    pool = Pool.create({ size: poolSize, poison: true });
    const cache = new PoolCache(pool, { maxBytes: cacheSize });
    app = Fastify();
    await app.register(nofailFastify, { pool, maxBodyBytes: poolSize, minFree: false, psiSome: false, psiFull: false });
    const refs: ReturnType<typeof counted>[] = [];
    const bodies: PoolBody[] = [];
    app.put<{ Params: { key: string }; Body: PoolBody }>('/kv/:key', { schema: { body: poolBody } }, async (req, reply) => {
      if (!cache.adopt(req.params.key, req.body, { sha: sha(Buffer.concat(req.body.buffers())) })) return app!.nofail.shedder.refuse(reply, 'no-memory');
      return reply.code(201).send();
    });
    app.get<{ Params: { key: string } }>('/kv/:key', (req, reply) => {
      const ref = cache.acquire(req.params.key);
      if (ref === undefined) return reply.code(404).send();
      const c = counted(ref);
      refs.push(c);
      return reply.header('x-checksum', (ref.meta as { sha: string }).sha).sendPool(c, { contentType: 'application/x-value' });
    });
    app.post('/echo', { schema: { body: poolBody } }, (req, reply) => {
      bodies.push(req.body);
      return reply.code(200).sendPool(req.body);
    });
    app.get('/bad', (_req, reply) => reply.sendPool({} as never));
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    return { cache, refs, bodies, port, url: `http://127.0.0.1:${port}` };
  }

  it('stores a body without a copy and serves it from the same pages, releasing each pin once', async () => {
    const { cache, refs, bodies, url } = await kv('1MiB', '512KiB');
    const v = payload(9 * PAGE_SIZE + 100);
    const put = await fetch(`${url}/kv/a`, { method: 'PUT', body: v, headers: { 'content-type': 'application/octet-stream' } });
    expect(put.status).toBe(201);
    expect(app!.nofail.shedder.stats()).toMatchObject({ bodyPages: 0, admitted: 1 });
    expect(cache.stats()).toMatchObject({ adopted: 1, pages: 10 });
    const got = await fetch(`${url}/kv/a`);
    expect([got.status, got.headers.get('content-type'), got.headers.get('content-length'), got.headers.get('x-checksum')]).toEqual([200, 'application/x-value', String(v.length), sha(v)]);
    expect(Buffer.from(await got.arrayBuffer()).equals(v)).toBe(true);
    await until(() => refs[0]!.released);
    expect(refs[0]!.calls).toBe(1);
    // A body sent back: freed once the response is out.
    const e = await fetch(`${url}/echo`, { method: 'POST', body: v, headers: { 'content-type': 'application/octet-stream' } });
    expect(Buffer.from(await e.arrayBuffer()).equals(v)).toBe(true);
    await until(() => bodies[0]!.state === 'freed');
    // Not a page source: checked before the reply is taken over, so Fastify answers the error.
    expect((await fetch(`${url}/bad`)).status).toBe(500);
    expectAccounting(pool, 10);
    cache.close();
    expectAccounting(pool, 0);
  });

  it('releases once when the connection dies in the middle of a pool response', async () => {
    const { cache, refs, port } = await kv('32MiB', '32MiB');
    cache.set('big', Buffer.alloc(24 << 20, 5), { sha: 'x' });
    const client = await stalledGet(port, '/kv/big');
    expect(client.status).toBe(200);
    expect(refs[0]!.calls).toBe(0);
    cache.delete('big');
    expect(cache.stats().pinnedEvictedPages).toBe(6144);
    client.destroy();
    await until(() => refs[0]!.calls > 0);
    await new Promise((r) => setTimeout(r, 20));
    expect(refs[0]!.calls).toBe(1);
    expect(cache.stats().pages).toBe(0);
    cache.close();
    expectAccounting(pool, 0);
  });

  it('frees a body whose client dies while its pages are waited for, or mid-upload; keeps one adopted', async () => {
    pool = Pool.create({ size: '1MiB' });
    const cache = new PoolCache(pool, { maxBytes: '512KiB' });
    app = Fastify();
    await app.register(nofailFastify, { pool, policy: 'reserve', budgetMs: 10_000, minFree: false, psiSome: false, psiFull: false });
    let handled = 0;
    app.put<{ Params: { key: string }; Body: PoolBody }>('/kv/:key', { schema: { body: poolBody } }, async (req, reply) => {
      handled++;
      cache.adopt(req.params.key, req.body);
      return reply.code(201).send();
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    const shed = app.nofail.shedder;
    const send = (key: string, length: number) => {
      const req = request({ port, host: '127.0.0.1', path: `/kv/${key}`, method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'content-length': String(length) } });
      req.on('error', () => {});
      req.on('response', (r) => r.resume());
      return req;
    };
    // While its pages are waited for (in onRequest).
    const held = takeAll(pool, GFP.KERNEL | GFP.NORETRY | GFP.NOWARN);
    const waiting = send('w', 4 * PAGE_SIZE);
    waiting.write(payload(10));
    await until(() => pool.stats().vmstat.reserve_waits > 0);
    waiting.destroy();
    await new Promise((r) => setTimeout(r, 20));
    for (const p of held.splice(0)) pool.free(p);
    await until(() => shed.stats().admitted + shed.stats().bodyPages === 0 && pool.stats().allocatedPages === 0);
    // Mid-upload: the whole body was claimed up front; it goes back.
    const uploading = send('u', 8 * PAGE_SIZE);
    uploading.write(payload(PAGE_SIZE));
    await until(() => shed.stats().bodyPages === 8);
    uploading.destroy();
    await until(() => shed.stats().bodyPages === 0);
    expect(handled).toBe(0);
    expectAccounting(pool, 0);
    // Adopted, then the client goes: the entry keeps its pages.
    const adopted = send('kept', 2 * PAGE_SIZE);
    adopted.end(payload(2 * PAGE_SIZE));
    await until(() => cache.has('kept'));
    adopted.destroy();
    await new Promise((r) => setTimeout(r, 20));
    expect(cache.get('kept')!.equals(payload(2 * PAGE_SIZE))).toBe(true);
    expectAccounting(pool, 2);
    cache.close();
    expectAccounting(pool, 0);
  });
});
