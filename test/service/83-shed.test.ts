/**
 * Load shedding on a real node:http server on loopback, and the Fastify
 * plugin: bodies into pool pages, 413 / 503 + Retry-After by size,
 * watermark, PSI and allocation budget, each policy; nothing leaks.
 */
import { createHash } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { GFP, LoadShedder, type LoadShedOptions, type Page, PAGE_SIZE, Pool, PoolBody, readPoolBody, ShedError } from '../../src/index.js';
import nofailFastify from '../../src/service/fastify.js';
import { expectAccounting, expectCode } from '../fixtures/expect.js';
import { takeAll } from '../fixtures/pool.js';
import { until } from '../fixtures/workers.js';

let pool: Pool;
let server: Server | undefined;
afterEach(async () => {
  if (server) await new Promise((r) => server!.close(r));
  server = undefined;
  pool?.close();
});

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A server that reads every body through the shedder and answers its sha256 and page count. */
async function serve(options: LoadShedOptions): Promise<{ url: string; shedder: LoadShedder; bodies: PoolBody[] }> {
  const shedder = new LoadShedder(pool, options);
  const bodies: PoolBody[] = [];
  server = createServer(async (req, res) => {
    const body = await readPoolBody(shedder, req, res);
    if (body === null) return;
    bodies.push(body);
    try {
      res.setHeader('x-pages', String(body.pages.length));
      res.end(sha(body.toBuffer()));
    } finally {
      body.free();
    }
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, shedder, bodies };
}

const payload = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7) & 255));

describe('LoadShedder with node:http', () => {
  it('reads a body into pool pages: the bytes arrive intact and the pages go back', async () => {
    pool = Pool.create({ size: '1MiB' });
    const { url, shedder } = await serve({});
    for (const n of [0, 1, PAGE_SIZE, 3 * PAGE_SIZE + 5]) {
      const b = payload(n);
      const r = await fetch(url, { method: 'POST', body: b });
      expect(r.status).toBe(200);
      expect(await r.text()).toBe(sha(b));
      expect(r.headers.get('x-pages')).toBe(String(Math.ceil(n / PAGE_SIZE)));
    }
    expect(shedder.stats().admitted).toBe(4);
    expectAccounting(pool, 0);
  });

  it('reads a chunked body of unknown length page by page, and refuses one over the limit with 413', async () => {
    pool = Pool.create({ size: '1MiB' });
    const { url, shedder } = await serve({ maxBodyBytes: 5 * PAGE_SIZE });
    const chunked = (parts: Buffer[]) =>
      fetch(url, {
        method: 'POST',
        body: new ReadableStream({
          start(c) {
            for (const p of parts) c.enqueue(p);
            c.close();
          },
        }),
        duplex: 'half',
      } as RequestInit);
    const parts = [payload(1000), payload(PAGE_SIZE * 2), payload(10)];
    const ok = await chunked(parts);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe(sha(Buffer.concat(parts)));
    const big = await chunked([payload(3 * PAGE_SIZE), payload(3 * PAGE_SIZE)]).catch((e: Error) => e);
    // The server answers 413 and closes; fetch may see the answer or the reset.
    if (!(big instanceof Error)) expect(big.status).toBe(413);
    const declared = await fetch(url, { method: 'POST', body: payload(6 * PAGE_SIZE) }).catch((e: Error) => e);
    if (!(declared instanceof Error)) expect(declared.status).toBe(413);
    expect(shedder.stats().shed['too-large']).toBe(2);
    expectAccounting(pool, 0);
  });

  it('answers 503 with Retry-After while free pages are below the watermark, without trying', async () => {
    pool = Pool.create({ size: '1MiB' });
    const { url, shedder } = await serve({ minFree: 'low', psiSome: false, psiFull: false, retryAfterSeconds: 7 });
    const held = takeAll(pool, GFP.ATOMIC);
    const r = await fetch(url, { method: 'POST', body: payload(100) });
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('7');
    expect(shedder.stats().shed.watermark).toBe(1);
    expect(shedder.pressure()).toBe('watermark');
    for (const p of held) pool.free(p);
    expect(shedder.pressure()).toBe(null);
    expect((await fetch(url, { method: 'POST', body: payload(100) })).status).toBe(200);
    expectAccounting(pool, 0);
  });

  for (const policy of ['reserve', 'loop', 'nowait'] as const) {
    it(`${policy}: a body that cannot be had within the budget is a 503, and nothing is left held`, async () => {
      pool = Pool.create({ size: '1MiB' });
      const { url, shedder } = await serve({ policy, budgetMs: 30, minFree: false, psiSome: false, psiFull: false });
      // Leave 3 pages above min: a 4-page body cannot be had.
      const held = takeAll(pool, GFP.KERNEL | GFP.NORETRY | GFP.NOWARN);
      for (const p of held.splice(0, 3)) pool.free(p);
      const t0 = performance.now();
      const r = await fetch(url, { method: 'POST', body: payload(4 * PAGE_SIZE) });
      const ms = performance.now() - t0;
      expect(r.status).toBe(503);
      expect(r.headers.get('retry-after')).toBe('1');
      expect(shedder.stats().shed.budget).toBe(1);
      if (policy !== 'nowait') expect(ms).toBeGreaterThanOrEqual(25); // it did wait for its budget
      // A body that fits is still admitted.
      expect((await fetch(url, { method: 'POST', body: payload(2 * PAGE_SIZE) })).status).toBe(200);
      for (const p of held) pool.free(p);
      expectAccounting(pool, 0);
    });
  }

  for (const policy of ['reserve', 'loop'] as const) {
    it(`${policy}: waits for memory freed within the budget without blocking the event loop`, async () => {
      pool = Pool.create({ size: '1MiB' });
      const { url } = await serve({ policy, budgetMs: 5000, minFree: false, psiSome: false, psiFull: false });
      const held: Page[] = takeAll(pool, GFP.KERNEL | GFP.NORETRY | GFP.NOWARN);
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 5);
      setTimeout(() => {
        for (const p of held.splice(0, 16)) pool.free(p);
      }, 150);
      const b = payload(4 * PAGE_SIZE);
      const t0 = performance.now();
      const r = await fetch(url, { method: 'POST', body: b });
      const ms = performance.now() - t0;
      clearInterval(ticker);
      expect(r.status).toBe(200);
      expect(await r.text()).toBe(sha(b));
      // The loop kept turning while the request waited: a tick every 5 ms
      // on a free loop (~30 in 150 ms); at least a third of that.
      expect(ticks).toBeGreaterThan(ms / (3 * 5));
      for (const p of held) pool.free(p);
      expectAccounting(pool, 0);
    });
  }

  it('under PSI pressure admits a body that fits and refuses one that does not at once, without spending its budget', async () => {
    pool = Pool.create({ size: '1MiB' });
    const { url, shedder } = await serve({ policy: 'loop', budgetMs: 5000, minFree: false, psiSome: 1, psiFull: false });
    // Make a real stall: a request waits 600 ms for memory, counted from
    // when PSI shows it waiting (however long the request took to arrive).
    const held = takeAll(pool, GFP.KERNEL | GFP.NORETRY | GFP.NOWARN);
    const stall0 = pool.stats().psi.some.total;
    const answer = fetch(url, { method: 'POST', body: payload(PAGE_SIZE) });
    await until(() => pool.stats().psi.some.total > stall0);
    setTimeout(() => {
      for (const p of held.splice(0)) pool.free(p);
    }, 600);
    expect((await answer).status).toBe(200);
    // PSI averages are updated every 2 s.
    await until(() => pool.pressure().psi.some.avg10 > 1);
    expect(shedder.pressure()).toBe('psi-some');
    // A body that fits is admitted: pressure is no reason to refuse it.
    expect((await fetch(url, { method: 'POST', body: payload(100) })).status).toBe(200);
    // One that does not fit is refused at once: waiting is what the pool is short of.
    held.push(...takeAll(pool, GFP.KERNEL | GFP.NORETRY | GFP.NOWARN));
    const t0 = performance.now();
    const r = await fetch(url, { method: 'POST', body: payload(2 * PAGE_SIZE) });
    const ms = performance.now() - t0;
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('1');
    expect(shedder.stats().shed).toMatchObject({ 'psi-some': 1, budget: 0 });
    expect(ms).toBeLessThan(5000 / 2); // the budget was 5 s
    for (const p of held) pool.free(p);
    expectAccounting(pool, 0);
  });

  it('frees a body whose client went away mid-upload', async () => {
    pool = Pool.create({ size: '1MiB' });
    const { url } = await serve({ minFree: false, psiSome: false, psiFull: false });
    const req = request(url, { method: 'POST', headers: { 'content-length': String(8 * PAGE_SIZE) } });
    req.on('error', () => {});
    const free0 = pool.stats().freePages;
    req.write(payload(PAGE_SIZE));
    // A failure before the client goes must not leave its connection open: afterEach closes the server.
    try {
      await until(() => pool.stats().freePages < free0); // the server has the request
      // All 8 pages were taken up front for the declared length.
      expect(pool.stats().allocatedPages).toBe(8);
    } finally {
      req.destroy();
    }
    // The server frees the body when it sees the connection gone.
    await until(() => pool.stats().allocatedPages === 0);
    expectAccounting(pool, 0);
  });

  it('validates its options', () => {
    pool = Pool.create({ size: '1MiB' });
    expectCode(() => new LoadShedder(pool, { policy: 'spin' as never }), 'ERR_OUT_OF_RANGE');
    expectCode(() => new LoadShedder(pool, { budgetMs: -1 }), 'ERR_OUT_OF_RANGE');
    expectCode(() => new LoadShedder(pool, { psiSome: 101 }), 'ERR_OUT_OF_RANGE');
    expectCode(() => new LoadShedder(pool, { minFree: 'max' as never }), 'ERR_OUT_OF_RANGE');
    expectCode(() => new LoadShedder(pool, { maxBodyBytes: 'lots' }), 'ERR_OUT_OF_RANGE');
    expectCode(() => new LoadShedder(pool, { gfp: GFP.NOFAIL | GFP.NORETRY }), 'ERR_INVALID_GFP');
    const e = new ShedError('budget', 'x', 3);
    expect([e.status, e.statusCode, e.headers['retry-after'], e.code]).toEqual([503, 503, '3', 'ERR_SHED']);
  });
});

describe('Fastify plugin', () => {
  it('puts octet-stream bodies in pool pages, frees them after the response, and sheds with 503/413', async () => {
    pool = Pool.create({ size: '1MiB' });
    const app = Fastify();
    await app.register(nofailFastify, { pool, policy: 'reserve', budgetMs: 30, maxBodyBytes: 16 * PAGE_SIZE, minFree: 'low', psiSome: false, psiFull: false });
    let seen: PoolBody | undefined;
    app.post('/body', async (req) => {
      seen = req.body as PoolBody;
      return { sha: sha(seen.toBuffer()), pages: seen.pages.length };
    });
    app.get('/health', { config: { nofail: false } } as never, async () => 'ok');
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      expect(app.nofail.pool).toBe(pool);
      const b = payload(3 * PAGE_SIZE + 1);
      const ok = await fetch(`${url}/body`, { method: 'POST', body: b, headers: { 'content-type': 'application/octet-stream' } });
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({ sha: sha(b), pages: 4 });
      expect(seen).toBeInstanceOf(PoolBody);
      expect(seen!.freed).toBe(true);
      expectAccounting(pool, 0);
      // Too large: 413 from the parser.
      const big = await fetch(`${url}/body`, { method: 'POST', body: payload(17 * PAGE_SIZE), headers: { 'content-type': 'application/octet-stream' } }).catch((e: Error) => e);
      if (!(big instanceof Error)) expect(big.status).toBe(413);
      // Under the watermark: 503 + Retry-After in onRequest; opted-out routes still answer.
      const held = takeAll(pool, GFP.ATOMIC);
      const shed = await fetch(`${url}/body`, { method: 'POST', body: payload(10), headers: { 'content-type': 'application/octet-stream' } });
      expect(shed.status).toBe(503);
      expect(shed.headers.get('retry-after')).toBe('1');
      expect((await fetch(`${url}/health`)).status).toBe(200);
      // Between min and low with the body over the budget: 503 from the parser.
      for (const p of held.splice(0, pool.stats().watermarks.low - pool.stats().freePages + 1)) pool.free(p);
      const budget = await fetch(`${url}/body`, { method: 'POST', body: payload(12 * PAGE_SIZE), headers: { 'content-type': 'application/octet-stream' } });
      expect(budget.status).toBe(503);
      expect(budget.headers.get('retry-after')).toBe('1');
      expect(app.nofail.shedder.stats().shed).toMatchObject({ watermark: 1, budget: 1 });
      for (const p of held) pool.free(p);
    } finally {
      await app.close();
    }
    expectAccounting(pool, 0);
  });
});

describe('LoadShedder edge cases', () => {
  it('refuses a body larger than the whole pool with 413 under every policy', async () => {
    pool = Pool.create({ size: '256KiB' });
    for (const policy of ['reserve', 'loop', 'nowait'] as const) {
      const shedder = new LoadShedder(pool, { policy, maxBodyBytes: '1MiB', minFree: false, psiSome: false, psiFull: false });
      const err = await shedder.admit(128 * PAGE_SIZE, (async function* () {})()).catch((e: unknown) => e);
      expect(err, policy).toBeInstanceOf(ShedError);
      expect((err as ShedError).status).toBe(413);
    }
    expectAccounting(pool, 0);
  });

  it('a refusal in the middle of a chunked upload is answered 503, not reset', async () => {
    pool = Pool.create({ size: '1MiB' });
    const { url } = await serve({ policy: 'nowait', minFree: false, psiSome: false, psiFull: false });
    const held = takeAll(pool, GFP.KERNEL | GFP.NORETRY | GFP.NOWARN);
    for (const p of held.splice(0, 2)) pool.free(p);
    const answer = await new Promise<{ status?: number; retryAfter?: string; error?: string }>((resolve) => {
      const req = request(url, { method: 'POST' }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode, retryAfter: res.headers['retry-after'] as string }));
      });
      req.on('error', (e) => resolve({ error: (e as NodeJS.ErrnoException).code }));
      // Two pages arrive and fit; the third cannot be had.
      req.write(payload(2 * PAGE_SIZE));
      setTimeout(() => req.end(payload(PAGE_SIZE)), 50);
    });
    expect(answer).toEqual({ status: 503, retryAfter: '1' });
    for (const p of held) pool.free(p);
    expectAccounting(pool, 0);
  });
});

describe('Fastify plugin, connections that go away', () => {
  it('frees a body whose client left before the reply, and lets opted-out routes skip the gate', async () => {
    pool = Pool.create({ size: '1MiB' });
    const app = Fastify();
    await app.register(nofailFastify, { pool, minFree: 'low', psiSome: false, psiFull: false });
    let entered = 0;
    let handled = 0;
    app.post('/slow', async (req) => {
      entered++;
      await new Promise((r) => setTimeout(r, 100));
      handled++;
      return { pages: (req.body as PoolBody).pages.length };
    });
    app.post('/open', { config: { nofail: false } } as never, async (req) => ({ pages: (req.body as PoolBody).pages.length }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const { port } = app.server.address() as AddressInfo;
      for (let i = 0; i < 5; i++) {
        const req = request({ port, host: '127.0.0.1', path: '/slow', method: 'POST', headers: { 'content-type': 'application/octet-stream' } });
        req.on('error', () => {});
        req.end(payload(4 * PAGE_SIZE));
        // Leave once the handler has the body, before its reply (100 ms later).
        await until(() => entered > i);
        req.destroy();
      }
      await until(() => handled === 5);
      expect(handled).toBe(5);
      // The plugin frees each body as its connection closes: wait for the last.
      await until(() => {
        try {
          expectAccounting(pool, 0);
          return true;
        } catch {
          return false;
        }
      });
      expectAccounting(pool, 0);
      // Under the watermark, a route that opted out still takes its body.
      const held = takeAll(pool, GFP.ATOMIC);
      for (const p of held.splice(0, pool.stats().watermarks.low - pool.stats().freePages - 1)) pool.free(p);
      const r = await fetch(`http://127.0.0.1:${port}/open`, { method: 'POST', body: payload(PAGE_SIZE), headers: { 'content-type': 'application/octet-stream' } });
      expect(r.status).toBe(200);
      expect(await r.json()).toEqual({ pages: 1 });
      for (const p of held) pool.free(p);
    } finally {
      await app.close();
    }
    expectAccounting(pool, 0);
  });
});
