/**
 * Refusals reach the client, and only what does not fit is refused: a
 * declared body is admitted or refused before a byte of it is read, and
 * the refusal (413, 503 + Retry-After) is answered on a connection that
 * stays open while the rest of the upload drains — or, when the client
 * asked to close it, one closed in stages — so that a client still
 * sending reads its answer instead of EPIPE/ECONNRESET; a client sending
 * past lingerMs is cut off. The same through the Fastify plugin (onRequest,
 * and a refusal decided mid-upload), which also does not shed requests
 * without a body unless the route asks. Real servers and raw clients on
 * loopback: careful ones that stop at an early answer, naive ones that
 * send every byte first.
 */
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { GFP, LoadShedder, type LoadShedOptions, PAGE_SIZE, Pool, readPoolBody } from '../../src/index.js';
import nofailFastify, { type NofailFastifyOptions, poolBody } from '../../src/service/fastify.js';
import { expectAccounting, expectCode } from '../fixtures/expect.js';
import { takeAll } from '../fixtures/pool.js';
import { until } from '../fixtures/workers.js';

let pool: Pool;
let server: Server | undefined;
afterEach(async () => {
  if (server) {
    server.closeAllConnections();
    await new Promise((r) => server!.close(r));
  }
  server = undefined;
  pool?.close();
});

const payload = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7) & 255));

/** A server that reads every body through the shedder and answers 200. */
async function serve(options: LoadShedOptions): Promise<{ url: string; shedder: LoadShedder }> {
  const shedder = new LoadShedder(pool, options);
  server = createServer(async (req, res) => {
    const body = await readPoolBody(shedder, req, res);
    if (body === null) return;
    body.free();
    res.end('ok');
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, shedder };
}

/** What a raw client saw of one upload: the answer (if any), when it came, and any error. */
interface Seen {
  status?: number;
  retryAfter?: string;
  connection?: string;
  /** The answer came before the upload ended. */
  early?: boolean;
  /** A socket error before any answer: the client was left without one. */
  error?: string;
  /** The connection closed before every byte was sent (after the answer: the server cut it off). */
  cutOff?: boolean;
  reused?: boolean;
}

/**
 * Uploads `total` bytes declared up front (or chunked) in `chunk`-byte
 * pieces every `everyMs`. `careful`: stop at an early answer (as curl
 * does); otherwise send to the end before reading it (the naive client).
 * Resolves once the answer is read and the upload is over: sent, stopped,
 * or cut off by the server (a client that has its answer sees no error
 * then, only its connection closing).
 */
function upload(
  url: string,
  o: { total: number; chunk: number; everyMs: number; careful: boolean; chunked?: boolean; path?: string; type?: string; agent?: Agent | false },
): Promise<Seen> {
  return new Promise((resolve) => {
    const seen: Seen = {};
    let sent = 0;
    let answered = false;
    let over = false;
    let done = false;
    // The socket's close listener goes when the upload is settled: a shared
    // keep-alive socket carries many uploads, and must not gather one each.
    let offClose = () => {};
    const settle = () => {
      if (!done && answered && over) {
        done = true;
        offClose();
        own?.destroy();
        resolve(seen);
      }
    };
    const headers: Record<string, string> = { 'content-type': o.type ?? 'application/octet-stream' };
    if (!o.chunked) headers['content-length'] = String(o.total);
    // A keep-alive connection of its own unless the test shares one (closed
    // when the upload is over: an idle one would hold up server.close()),
    // or none (`agent: false`): then the client asks for Connection: close.
    const own = o.agent === undefined ? new Agent({ keepAlive: true }) : null;
    const req = request(`${url}${o.path ?? '/'}`, { method: 'PUT', headers, agent: own ?? o.agent });
    req.on('response', (res) => {
      seen.status = res.statusCode;
      seen.retryAfter = res.headers['retry-after'] as string | undefined;
      seen.connection = res.headers.connection;
      seen.early = sent < o.total;
      seen.reused = req.reusedSocket;
      res.resume();
      res.on('end', () => {
        answered = true;
        if (sent < o.total && o.careful) {
          over = true;
          req.destroy();
        }
        settle();
      });
    });
    req.on('socket', (socket) => {
      const onClose = () => {
        if (!over) seen.cutOff = true;
        if (seen.status === undefined) seen.error ??= 'closed without an answer';
        over = answered = true;
        settle();
      };
      socket.once('close', onClose);
      offClose = () => socket.off('close', onClose);
    });
    req.on('error', (e) => {
      if (seen.status === undefined) seen.error = (e as NodeJS.ErrnoException).code ?? e.message;
    });
    const next = () => {
      if (over || req.destroyed) return;
      const n = Math.min(o.chunk, o.total - sent);
      sent += n;
      if (sent < o.total) {
        req.write(payload(n));
        setTimeout(next, o.everyMs);
      } else {
        req.end(payload(n));
        req.once('finish', () => {
          over = true;
          settle();
        });
      }
    };
    next();
  });
}

describe('refusals reach the client', () => {
  it('a declared body over the limit is refused before a byte is read; a client streaming 10x the limit reads its 413', async () => {
    pool = Pool.create({ size: '1MiB' });
    const { url, shedder } = await serve({ maxBodyBytes: 16 * PAGE_SIZE, minFree: false, psiSome: false, psiFull: false });
    const limit = 16 * PAGE_SIZE;
    for (const careful of [false, true]) {
      const seen = await upload(url, { total: 10 * limit, chunk: 64 * 1024, everyMs: 1, careful });
      expect(seen, careful ? 'careful' : 'naive').toMatchObject({ status: 413, early: true });
      expect(seen.error).toBeUndefined();
      expect(seen.cutOff).toBeUndefined();
      expect(seen.connection).not.toBe('close');
    }
    expect(shedder.stats().shed['too-large']).toBe(2);
    expect(pool.stats().vmstat.pgalloc ?? 0).toBe(0);
    expectAccounting(pool, 0);
  });

  it('a refused connection stays open: the drained body ends and the next request reuses it', async () => {
    pool = Pool.create({ size: '1MiB' });
    const { url, shedder } = await serve({ policy: 'nowait', minFree: false, psiSome: false, psiFull: false });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const held = takeAll(pool, GFP.KERNEL | GFP.NORETRY | GFP.NOWARN);
    const refused = await upload(url, { total: 8 * PAGE_SIZE, chunk: PAGE_SIZE, everyMs: 2, careful: false, agent });
    expect(refused).toMatchObject({ status: 503, retryAfter: '1', early: true });
    expect(refused.error).toBeUndefined();
    expect(refused.cutOff).toBeUndefined();
    for (const p of held) pool.free(p);
    const next = await upload(url, { total: PAGE_SIZE, chunk: PAGE_SIZE, everyMs: 1, careful: false, agent });
    expect(next).toMatchObject({ status: 200, reused: true });
    agent.destroy();
    expect(shedder.stats()).toMatchObject({ cutOff: 0, shed: { budget: 1 } });
    expectAccounting(pool, 0);
  });

  it('a client that asked for Connection: close gets its answer on a connection closed in stages, not reset', async () => {
    pool = Pool.create({ size: '1MiB' });
    const { url, shedder } = await serve({ maxBodyBytes: 16 * PAGE_SIZE, minFree: false, psiSome: false, psiFull: false });
    for (const careful of [false, true]) {
      // Node's client, like many, stops sending when the server half-closes after the answer.
      const seen = await upload(url, { total: 160 * PAGE_SIZE, chunk: 64 * 1024, everyMs: 1, careful, agent: false });
      expect(seen, careful ? 'careful' : 'naive').toMatchObject({ status: 413, early: true, connection: 'close' });
      expect(seen.error).toBeUndefined();
    }
    expect(shedder.stats()).toMatchObject({ cutOff: 0, shed: { 'too-large': 2 } });
    expectAccounting(pool, 0);
  });

  it('refusals on one keep-alive connection leave nothing on its socket once each body drained', async () => {
    pool = Pool.create({ size: '1MiB' });
    const shedder = new LoadShedder(pool, { policy: 'nowait', minFree: false, psiSome: false, psiFull: false });
    const sockets = new Set<import('node:net').Socket>();
    server = createServer(async (req, res) => {
      sockets.add(req.socket);
      const body = await readPoolBody(shedder, req, res);
      if (body === null) return;
      body.free();
      res.end('ok');
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const held = takeAll(pool, GFP.KERNEL | GFP.NORETRY | GFP.NOWARN);
    const first = await upload(url, { total: 4 * PAGE_SIZE, chunk: PAGE_SIZE, everyMs: 1, careful: false, agent });
    expect(first.status).toBe(503);
    const [socket] = [...sockets];
    await until(() => !Object.hasOwn(socket!, 'destroySoon'));
    const listeners = socket!.listenerCount('close');
    for (let i = 0; i < 20; i++) {
      const seen = await upload(url, { total: 4 * PAGE_SIZE, chunk: PAGE_SIZE, everyMs: 1, careful: false, agent });
      expect(seen).toMatchObject({ status: 503, reused: true });
    }
    expect(sockets.size).toBe(1);
    // Nothing per refusal stays behind once the last body has drained: no
    // listener, no lingering close.
    await until(() => !Object.hasOwn(socket!, 'destroySoon'));
    expect(socket!.listenerCount('close')).toBe(listeners);
    agent.destroy();
    for (const p of held) pool.free(p);
    expect(shedder.stats().shed.budget).toBe(21);
    expectAccounting(pool, 0);
  });

  it('a client still sending lingerMs after its answer is cut off (and it had its answer)', async () => {
    pool = Pool.create({ size: '1MiB' });
    const { url, shedder } = await serve({ maxBodyBytes: PAGE_SIZE, lingerMs: 100, minFree: false, psiSome: false, psiFull: false });
    // 1000 chunks 20 ms apart: far longer than the linger.
    const seen = await upload(url, { total: 1000 * PAGE_SIZE, chunk: PAGE_SIZE, everyMs: 20, careful: false });
    expect(seen).toMatchObject({ status: 413, early: true, cutOff: true });
    expect(seen.error).toBeUndefined();
    expect(shedder.stats().cutOff).toBe(1);
    expectAccounting(pool, 0);
  });

  it('refuse() answers any route the same way and counts it', async () => {
    pool = Pool.create({ size: '1MiB' });
    const shedder = new LoadShedder(pool, { retryAfterSeconds: 4 });
    server = createServer((req, res) => {
      if (req.url === '/big') shedder.refuse(res, 'too-large', 'no thanks');
      else shedder.refuse(res, 'no-memory');
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const r = await fetch(`${url}/kv`, { method: 'PUT', body: payload(100) });
    expect([r.status, r.headers.get('retry-after'), r.headers.get('connection')]).toEqual([503, '4', 'keep-alive']);
    expect(await r.text()).toMatch(/^Service Unavailable: no memory/);
    const big = await fetch(`${url}/big`);
    expect([big.status, big.headers.get('retry-after'), await big.text()]).toEqual([413, null, 'Payload Too Large: no thanks\n']);
    expect(shedder.stats().shed).toMatchObject({ 'no-memory': 1, 'too-large': 1 });
    expectCode(() => shedder.refuse({} as never, 'tired' as never), 'ERR_OUT_OF_RANGE');
    expectAccounting(pool, 0);
  });
});

describe('Fastify plugin: admission before the body, and what is not shed', () => {
  async function start(options: Partial<NofailFastifyOptions> = {}) {
    const app = Fastify();
    await app.register(nofailFastify, { pool, minFree: false, psiSome: false, psiFull: false, ...options });
    app.put('/kv', { schema: { body: poolBody } }, async (req, reply) => {
      const body = req.body;
      return reply.code(201).send({ pages: body.pages.length, bytes: body.size });
    });
    app.put('/full', { schema: { body: poolBody } }, async (req, reply) => app.nofail.shedder.refuse(reply, 'no-memory'));
    app.get('/kv', async () => 'value');
    app.get('/strict', { config: { nofail: { shedWithoutBody: true } } }, async () => 'value');
    await app.listen({ port: 0, host: '127.0.0.1' });
    return { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` };
  }

  it('refuses a declared body in onRequest, before reading it, on a connection the client can still read', async () => {
    pool = Pool.create({ size: '1MiB' });
    const { app, url } = await start({ policy: 'nowait' });
    try {
      const held = takeAll(pool, GFP.KERNEL | GFP.NORETRY | GFP.NOWARN);
      for (const careful of [true, false]) {
        const seen = await upload(`${url}`, { path: '/kv', total: 16 * PAGE_SIZE, chunk: PAGE_SIZE, everyMs: 5, careful });
        expect(seen).toMatchObject({ status: 503, retryAfter: '1', early: true });
        expect(seen.error).toBeUndefined();
        expect(seen.cutOff).toBeUndefined();
        expect(seen.connection).not.toBe('close');
      }
      expect(app.nofail.shedder.stats()).toMatchObject({ admitted: 0, bodyPages: 0, shed: { budget: 2 } });
      for (const p of held) pool.free(p);
      const ok = await fetch(`${url}/kv`, { method: 'PUT', body: payload(3 * PAGE_SIZE), headers: { 'content-type': 'application/octet-stream' } });
      expect(await ok.json()).toEqual({ pages: 3, bytes: 3 * PAGE_SIZE });
    } finally {
      await app.close();
    }
    expectAccounting(pool, 0);
  });

  it('answers a refusal decided mid-upload (chunked) without Connection: close', async () => {
    pool = Pool.create({ size: '1MiB' });
    const { app, url } = await start({ maxBodyBytes: 4 * PAGE_SIZE });
    try {
      for (const careful of [true, false]) {
        const seen = await upload(url, { path: '/kv', total: 12 * PAGE_SIZE, chunk: PAGE_SIZE, everyMs: 5, careful, chunked: true });
        expect(seen).toMatchObject({ status: 413, early: true });
        expect(seen.error).toBeUndefined();
        expect(seen.cutOff).toBeUndefined();
        expect(seen.connection).not.toBe('close');
      }
      expect(app.nofail.shedder.stats().shed['too-large']).toBe(2);
    } finally {
      await app.close();
    }
    expectAccounting(pool, 0);
  });

  it('does not shed requests without a body under pressure unless the route asks; refuse() works from a handler', async () => {
    pool = Pool.create({ size: '1MiB' });
    const { app, url } = await start({ minFree: 'low' });
    try {
      const held = takeAll(pool, GFP.ATOMIC);
      expect(app.nofail.shedder.pressure()).toBe('watermark');
      expect((await fetch(`${url}/kv`)).status).toBe(200);
      const strict = await fetch(`${url}/strict`);
      expect([strict.status, strict.headers.get('retry-after')]).toEqual([503, '1']);
      for (const p of held) pool.free(p);
      expect((await fetch(`${url}/strict`)).status).toBe(200);
      const full = await fetch(`${url}/full`, { method: 'PUT', body: payload(10), headers: { 'content-type': 'application/octet-stream' } });
      expect([full.status, full.headers.get('retry-after')]).toEqual([503, '1']);
      expect(app.nofail.shedder.stats().shed).toMatchObject({ watermark: 1, 'no-memory': 1 });
    } finally {
      await app.close();
    }
    expectAccounting(pool, 0);
  });

  it('a `schema: { body: poolBody }` route takes only pool bodies (415 otherwise), and rejects bad route config', async () => {
    pool = Pool.create({ size: '1MiB' });
    const { app, url } = await start();
    try {
      const json = await fetch(`${url}/kv`, { method: 'PUT', body: '{"a":1}', headers: { 'content-type': 'application/json' } });
      expect(json.status).toBe(415);
      const none = await fetch(`${url}/kv`, { method: 'PUT' });
      expect(none.status).toBe(415);
      const ok = await fetch(`${url}/kv`, { method: 'PUT', body: payload(5), headers: { 'content-type': 'application/octet-stream; charset=binary' } });
      expect(await ok.json()).toEqual({ pages: 1, bytes: 5 });
      // An empty body is a body: a PoolBody of no pages.
      const empty = await fetch(`${url}/kv`, { method: 'PUT', body: Buffer.alloc(0), headers: { 'content-type': 'application/octet-stream' } });
      expect([empty.status, await empty.json()]).toEqual([201, { pages: 0, bytes: 0 }]);
    } finally {
      await app.close();
    }
    const bad = Fastify();
    await bad.register(nofailFastify, { pool });
    expect(() => bad.get('/x', { config: { nofail: { shedWithoutBodies: true } as never } }, async () => 'x')).toThrow(/did you mean 'shedWithoutBody'/);
    await bad.close();
    expectAccounting(pool, 0);
  });
});
