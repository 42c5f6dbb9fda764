/**
 * Model-based test over the whole public API (issue 7): allocations in and
 * out of reservations (watermark and token), mempool allocations and
 * frees, page-cache reads and writes with real file I/O, bulk calls, bad
 * operations, and close(). The reference model keeps what each facility
 * must account for; after every step the pool's numbers must agree:
 *   free + allocated == total; reservedPages == what watermark reservations
 *   have left; reservedTokens == what token reservations have left; the
 *   mempool's reserve == the model's; no two live blocks overlap and each
 *   still holds its stamp; a bad operation throws its code and changes
 *   nothing.
 * Each sequence ends with checkInvariants(), then close(): every page
 * comes back, nothing stays reserved.
 *
 * NOFAIL_MODEL_API_RUNS sets the number of sequences (default 2500; with
 * the 2 x 4000 of 30-model.test.ts, over 10k sequences per CI run).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { GFP, Mempool, type Page, PageCache, Pool, type Reservation } from '../../../src/index.js';

const TOTAL = 96;
const RUNS = Number(process.env.NOFAIL_MODEL_API_RUNS ?? 2500);
const SOFT = GFP.NORETRY | GFP.NOWARN; // at its floor a blocking mask fails instead of waiting
const dir = mkdtempSync(join(tmpdir(), 'nofail-model-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Live {
  page: Page;
  stamp: number;
  from: 'pool' | 'mempool';
}

interface World {
  pool: Pool;
  mp: Mempool;
  pc: PageCache | null;
  live: Live[];
  freed: Page[];
  reservations: Reservation[];
  mpReserve: number;
  stamp: number;
  closed: boolean;
}

function codeOf(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (e) {
    return (e as { code?: string; name?: string }).code ?? (e as Error).name;
  }
}

function stampPage(w: World, page: Page, from: Live['from']): void {
  const stamp = ++w.stamp;
  new DataView(page.bytes.buffer, page.bytes.byteOffset).setUint32(0, stamp);
  w.live.push({ page, stamp, from });
}

function check(w: World): void {
  if (w.closed) return;
  const s = w.pool.stats();
  expect(s.freePages + s.cachedPages + s.allocatedPages).toBe(TOTAL);
  const watermark = w.reservations.filter((r) => r.mode === 'watermark' && !r.released);
  const tokens = w.reservations.filter((r) => r.mode === 'tokens' && !r.released);
  expect(s.reservedPages).toBe(watermark.reduce((n, r) => n + r.remaining, 0));
  expect(s.reservedTokens).toBe(tokens.reduce((n, r) => n + r.remaining, 0));
  expect(w.mp.stats().currNr).toBe(w.mpReserve);
  const spans = w.live.map((l) => [l.page.pfn, l.page.pfn + (1 << l.page.order)] as const).sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
  for (const l of w.live) expect(new DataView(l.page.bytes.buffer, l.page.bytes.byteOffset).getUint32(0)).toBe(l.stamp);
}

type Cmd = fc.Command<object, World>;
const cmd = (name: string, run: (w: World) => void): Cmd => ({
  check: () => true,
  run: (_m, w) => {
    if (w.closed) {
      expect(codeOf(() => w.pool.alloc(GFP.NOWAIT))).toBe('ERR_POOL_CLOSED');
      return;
    }
    run(w);
    check(w);
  },
  toString: () => name,
});

const gfps = fc.constantFrom(GFP.KERNEL | SOFT, GFP.NOFS | SOFT, GFP.ATOMIC, GFP.NOWAIT, GFP.KERNEL | SOFT | GFP.RESERVE);
const pick = fc.nat();

const commands = fc.commands(
  [
    fc.tuple(gfps, fc.integer({ min: 0, max: 3 }), fc.option(pick)).map(([gfp, order, inRes]) =>
      cmd(`alloc(${gfp.toString(16)}, ${order}, res ${inRes})`, (w) => {
        const open = w.reservations.filter((r) => !r.released);
        const r = inRes !== null && open.length > 0 ? open[inRes % open.length] : undefined;
        const before = r?.remaining ?? 0;
        const run = () => w.pool.alloc(gfp, order);
        let page: Page | undefined;
        const code = codeOf(() => {
          page = r ? r.run(run) : run();
        });
        expect([null, 'ENOMEM']).toContain(code);
        if (page) stampPage(w, page, 'pool');
        if (r) {
          // A token reservation hands out an order-0 page first; a watermark one is charged only by RESERVE.
          const used = before - r.remaining;
          if (r.mode === 'tokens') expect(used).toBe(page && order === 0 && before > 0 ? 1 : 0);
          else expect(used).toBe(page && gfp & GFP.RESERVE && before >= 1 << order ? 1 << order : 0);
        }
      }),
    ),
    fc.tuple(fc.integer({ min: 1, max: 8 }), gfps).map(([n, gfp]) =>
      cmd(`allocBulk(${n})`, (w) => {
        let pages: Page[] = [];
        expect([null, 'ENOMEM']).toContain(codeOf(() => (pages = w.pool.allocBulk(n, gfp))));
        for (const p of pages) stampPage(w, p, 'pool');
      }),
    ),
    pick.map((i) =>
      cmd(`free(${i})`, (w) => {
        if (w.live.length === 0) return;
        const [l] = w.live.splice(i % w.live.length, 1);
        if (l!.from === 'mempool') {
          if (w.mpReserve < 2) w.mpReserve++;
          w.mp.free(l!.page);
        } else {
          w.pool.free(l!.page);
        }
        w.freed.push(l!.page);
      }),
    ),
    fc.integer({ min: 2, max: 6 }).map((n) =>
      cmd(`freeBulk(${n})`, (w) => {
        const batch = w.live.filter((l) => l.from === 'pool').slice(0, n);
        w.live = w.live.filter((l) => !batch.includes(l));
        w.pool.freeBulk(batch.map((l) => l.page));
        w.freed.push(...batch.map((l) => l.page));
      }),
    ),
    pick.map((i) =>
      cmd(`doubleFree(${i})`, (w) => {
        if (w.freed.length === 0) return;
        const p = w.freed[i % w.freed.length]!;
        expect(codeOf(() => w.pool.free(p))).toBe('ERR_DOUBLE_FREE');
      }),
    ),
    fc.tuple(fc.integer({ min: 0, max: TOTAL }), fc.integer({ min: 0, max: 4 })).map(([pfn, order]) =>
      cmd(`forged(${pfn}, ${order})`, (w) => {
        expect(codeOf(() => w.pool.free({ pfn, order } as unknown as Page))).toBe('ERR_BAD_PAGE');
      }),
    ),
    fc.tuple(fc.integer({ min: 1, max: 24 }), fc.constantFrom('watermark' as const, 'tokens' as const)).map(([n, mode]) =>
      cmd(`reserve(${n}, ${mode})`, (w) => {
        let r: Reservation | undefined;
        const code = codeOf(() => (r = w.pool.reserve(n, { mode })));
        // Memory short: the main thread may not wait, and nothing stays reserved.
        expect([null, 'ERR_WOULD_BLOCK']).toContain(code);
        if (r) w.reservations.push(r);
      }),
    ),
    pick.map((i) =>
      cmd(`release(${i})`, (w) => {
        const open = w.reservations.filter((r) => !r.released);
        if (open.length > 0) open[i % open.length]!.release();
      }),
    ),
    fc.constantFrom(GFP.ATOMIC, GFP.NOWAIT, GFP.KERNEL | SOFT).map((gfp) =>
      cmd(`mempool.alloc(${gfp.toString(16)})`, (w) => {
        const before = w.mp.stats();
        let page: Page | null = null;
        const code = codeOf(() => (page = w.mp.alloc(gfp)));
        expect([null, 'ERR_WOULD_BLOCK']).toContain(code);
        const after = w.mp.stats();
        if (after.fromReserve > before.fromReserve) w.mpReserve--;
        if (page) stampPage(w, page, 'mempool');
      }),
    ),
    fc.tuple(fc.integer({ min: 0, max: 40 }), fc.boolean()).map(([block, write]) =>
      cmd(`pagecache.${write ? 'write' : 'read'}(${block})`, (w) => {
        if (!w.pc) return;
        const code = codeOf(() =>
          write ? w.pc!.write(block, new Uint8Array([block & 0xff]), 0, GFP.KERNEL | SOFT) : w.pc!.read(block, GFP.KERNEL | SOFT),
        );
        expect([null, 'ENOMEM']).toContain(code);
      }),
    ),
    fc.constant(
      cmd('close()', (w) => {
        w.pc?.close();
        w.pc = null;
        w.mp.destroy();
        w.pool.close();
        w.closed = true;
        expect(codeOf(() => w.pool.stats())).toBe('ERR_POOL_CLOSED');
        for (const l of w.live) expect(codeOf(() => l.page.bytes)).toBe('ERR_POOL_CLOSED');
      }),
    ),
  ],
  { maxCommands: 30 },
);

let run = 0;
function sequence(cmds: Iterable<Cmd>): void {
  run++;
  const pool = Pool.create({ size: TOTAL * 4096, maxOrder: 4, watermarks: { min: 6, low: 10, high: 14 }, pcp: { batch: 4, high: 8 } });
  const w: World = {
    pool,
    mp: Mempool.create(pool, { minNr: 2 }),
    pc: run % 8 === 0 ? new PageCache(pool, { file: join(dir, `f${run % 32}`) }) : null,
    live: [],
    freed: [],
    reservations: [],
    mpReserve: 2,
    stamp: 0,
    closed: false,
  };
  try {
    fc.modelRun(() => ({ model: {}, real: w }), cmds);
    if (!w.closed) {
      pool.checkInvariants();
      for (const r of w.reservations) r.release();
      w.pc?.close();
      w.mp.destroy();
      pool.freeBulk(w.live.filter((l) => l.from === 'pool').map((l) => l.page));
      for (const l of w.live.filter((x) => x.from === 'mempool')) pool.free(l.page);
      const s = pool.stats();
      expect(s.freePages + s.cachedPages).toBe(TOTAL);
      expect(s.allocatedPages).toBe(0);
      expect(s.reservedPages + s.reservedTokens).toBe(0);
      pool.checkInvariants();
    }
  } finally {
    if (!w.closed) pool.close();
  }
}

describe('model-based: the whole public API', () => {
  it(`${RUNS} random sequences keep every account`, () => {
    fc.assert(fc.property(commands, sequence), { numRuns: RUNS });
  });
});
