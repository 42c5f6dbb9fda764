/**
 * Model-based test (DESIGN §5): random sequences of allocations (random
 * order and GFP mask), frees, bulk calls, transfers and bad operations
 * (double frees, forged and transferred handles, duplicates in a bulk
 * free), run against a real pool and a reference model that knows only
 * the live blocks. After every step:
 *   - no two live blocks overlap, each is aligned and inside the pool, and
 *     each still holds the stamp written into it;
 *   - free + allocated == total, buddyinfo sums to free,
 *     allocated == live pages + cached pages;
 *   - an allocation succeeds exactly when the model says it can: the
 *     caller's watermark (min, with ATOMIC's reserve) leaves room, and the
 *     pages outside live blocks hold enough aligned runs of 2^order (a
 *     fully coalescing buddy allocator has a free block wherever there is
 *     an aligned free run; a page cache is drained before the slow path);
 *   - a bad operation throws its code and changes nothing.
 * Each sequence ends with checkInvariants() and a full free.
 *
 * NOFAIL_MODEL_RUNS sets the number of sequences per variant (default 4000).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GFP, type Page, PAGE_SIZE, Pool, type PoolOptions } from '../../../src/index.js';
import { native, STAT } from '../../../src/binding/native.js';
import { attachmentOf } from '../../../src/mm/pool.js';
import { expectCode } from '../../fixtures/expect.js';

const TOTAL = 64;
const MAX_ORDER = 4;
const WMARK = { min: 8, low: 12, high: 16 };
const RUNS = Number(process.env.NOFAIL_MODEL_RUNS ?? 4000);

// Masks that may block carry NORETRY|NOWARN: at their floor they fail
// instead of waiting (ERR_WOULD_BLOCK on the main thread), without changing
// how deep they may go.
const FAIL = GFP.NORETRY | GFP.NOWARN;
const GFPS = {
  KERNEL: GFP.KERNEL | FAIL,
  ATOMIC: GFP.ATOMIC,
  NOWAIT: GFP.NOWAIT,
  'KERNEL|ZERO': GFP.KERNEL | GFP.ZERO | FAIL,
} as const;
type GfpName = keyof typeof GFPS;

/** The mark a caller must stay above, from the rule in DESIGN §3 (not from the code under test). */
function markFor(gfp: number): number {
  const min = WMARK.min;
  if (gfp & GFP.HIGH) {
    const half = min - Math.floor(min / 2);
    return gfp & GFP.DIRECT_RECLAIM ? half : half - Math.floor(half / 4);
  }
  return min;
}

interface Block {
  pfn: number;
  order: number;
  page: Page;
  stamp: number;
}

interface Model {
  live: Block[];
  /** Handles freed since (any free of them is a double free). */
  freed: Page[];
  /** Handles given away by transfer(). */
  moved: Page[];
  nextStamp: number;
}

interface Real {
  pool: Pool;
  /** A raw attachment to the same pool, for cheap per-step counters (see counts()). */
  slot: number;
  ctl: Int32Array;
}

interface Counts {
  freePages: number;
  allocatedPages: number;
  cachedPages: number;
  threadPages: number;
  frees: number;
  buddyinfo: number[];
}

const statsOut = new Float64Array(native.statsLength);
/**
 * The numbers pool.stats() reports, read straight from the addon's snapshot
 * (stats() adds vmstat and PSI, too much to build after each of ~40,000
 * steps). runSequence() compares the two at the end.
 */
function counts(r: Real): Counts {
  native.stats(r.slot, statsOut);
  const buddyinfo: number[] = [];
  for (let o = 0; o <= MAX_ORDER; o++) buddyinfo.push(statsOut[STAT.buddyinfo + o]!);
  return {
    freePages: statsOut[STAT.freePages]!,
    allocatedPages: statsOut[STAT.allocatedPages]!,
    cachedPages: statsOut[STAT.cachedPages]!,
    // The raw slot is an attachment of its own: ask for the pool's task by id.
    threadPages: native.taskPages(r.slot, r.pool.taskId) - statsOut[STAT.cachedPages]!,
    frees: statsOut[STAT.frees]!,
    buddyinfo,
  };
}

function livePages(m: Model): number {
  return m.live.reduce((n, b) => n + 2 ** b.order, 0);
}

function occupancy(m: Model): Uint8Array {
  const used = new Uint8Array(TOTAL);
  for (const b of m.live) used.fill(1, b.pfn, b.pfn + 2 ** b.order);
  return used;
}

/** Aligned runs of 2^order pages outside every live block. */
function freeRuns(m: Model, order: number): number {
  const used = occupancy(m);
  const size = 2 ** order;
  let runs = 0;
  for (let pfn = 0; pfn + size <= TOTAL; pfn += size) {
    if (used.subarray(pfn, pfn + size).every((u) => u === 0)) runs++;
  }
  return runs;
}

/** Can n blocks of 2^order be had with this mask, per the model? */
function canAlloc(m: Model, n: number, order: number, gfp: number): boolean {
  if (n === 0) return true;
  const free = TOTAL - livePages(m);
  return free - (n * 2 ** order - 1) > markFor(gfp) && freeRuns(m, order) >= n;
}

function writeStamp(b: Block): void {
  const bytes = b.page.bytes;
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  for (let i = 0; i < 2 ** b.order; i++) {
    words[i * 1024] = ((b.pfn + i) * 0x9e3779b1) ^ b.stamp;
    words[i * 1024 + 1023] = b.stamp;
  }
}

function checkStamp(b: Block): void {
  const bytes = b.page.bytes;
  if (bytes.byteLength !== PAGE_SIZE << b.order) throw new Error(`block ${b.pfn}/${b.order}: view of ${bytes.byteLength} bytes`);
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  for (let i = 0; i < 2 ** b.order; i++) {
    if (words[i * 1024] !== (((b.pfn + i) * 0x9e3779b1) ^ b.stamp) >>> 0 || words[i * 1024 + 1023] !== b.stamp) {
      throw new Error(`block ${b.pfn}/${b.order}: page ${b.pfn + i} lost its stamp (overwritten by another block?)`);
    }
  }
}

/** Throws (cheaply: this runs after every step) unless `ok`. */
function assert(ok: boolean, what: () => string): void {
  if (!ok) throw new Error(what());
}

/** What must hold after every step; returns the counters it read. */
function checkState(m: Model, r: Real): Counts {
  const s = counts(r);
  const live = livePages(m);
  const inBuddy = s.buddyinfo.reduce((sum, k, o) => sum + k * 2 ** o, 0);
  assert(
    s.freePages + s.cachedPages + s.allocatedPages === TOTAL,
    () => `free ${s.freePages} + cached ${s.cachedPages} + allocated ${s.allocatedPages} != ${TOTAL}`,
  );
  assert(inBuddy === s.freePages, () => `buddyinfo holds ${inBuddy} pages, free is ${s.freePages}`);
  const cache = attachmentOf(r.pool).pcp?.count ?? 0;
  assert(s.cachedPages === cache, () => `stats say ${s.cachedPages} cached, the page cache holds ${cache}`);
  assert(s.allocatedPages === live, () => `allocated ${s.allocatedPages} != ${live} pages in live blocks`);
  assert(s.threadPages === s.allocatedPages, () => `thread holds ${s.threadPages}, allocated ${s.allocatedPages}`);
  const used = new Uint8Array(TOTAL);
  for (const b of m.live) {
    const end = b.pfn + 2 ** b.order;
    assert(b.pfn % 2 ** b.order === 0 && end <= TOTAL, () => `block ${b.pfn}/${b.order} misaligned or outside the pool`);
    for (let p = b.pfn; p < end; p++) {
      assert(used[p] === 0, () => `page ${p} is in two live blocks`);
      used[p] = 1;
    }
    checkStamp(b);
  }
  return s;
}

function adopt(m: Model, page: Page, order: number, gfp: number): void {
  assert(page.order === order, () => `asked for order ${order}, got ${page.order}`);
  const b: Block = { pfn: page.pfn, order, page, stamp: m.nextStamp++ };
  if (gfp & GFP.ZERO) {
    const w = new Uint32Array(page.bytes.buffer, page.bytes.byteOffset, page.bytes.byteLength / 4);
    for (let i = 0; i < w.length; i += 509) assert(w[i] === 0, () => `__GFP_ZERO block ${page.pfn} not zeroed`);
    assert(w[w.length - 1] === 0, () => `__GFP_ZERO block ${page.pfn} not zeroed at the end`);
  }
  writeStamp(b);
  m.live.push(b);
}

type Cmd = fc.Command<Model, Real>;

class AllocCmd implements Cmd {
  constructor(
    readonly order: number,
    readonly gfp: GfpName,
  ) {}
  check = () => true;
  run(m: Model, r: Real, checkAfter = true): void {
    const gfp = GFPS[this.gfp];
    const expected = canAlloc(m, 1, this.order, gfp);
    let page: Page | undefined;
    try {
      page = r.pool.alloc(gfp, this.order);
    } catch (e) {
      assert((e as { code?: string }).code === 'ENOMEM', () => `unexpected ${String(e)}`);
    }
    assert(page !== undefined === expected, () => `alloc(${this.gfp}, ${this.order}) ${expected ? 'failed' : 'succeeded'}`);
    if (page) adopt(m, page, this.order, gfp);
    if (checkAfter) checkState(m, r);
  }
  toString = () => `alloc(${this.gfp}, ${this.order})`;
}

class AllocBulkCmd implements Cmd {
  constructor(
    readonly n: number,
    readonly order: number,
    readonly gfp: GfpName,
  ) {}
  check = () => true;
  run(m: Model, r: Real): void {
    const gfp = GFPS[this.gfp];
    const expected = canAlloc(m, this.n, this.order, gfp);
    let pages: Page[] | undefined;
    try {
      pages = r.pool.allocBulk(this.n, gfp, this.order);
    } catch (e) {
      assert((e as { code?: string }).code === 'ENOMEM', () => `unexpected ${String(e)}`);
    }
    assert(
      pages !== undefined === expected,
      () => `allocBulk(${this.n}, ${this.gfp}, ${this.order}) ${expected ? 'failed' : 'succeeded'}`,
    );
    if (pages) {
      expect(pages.length).toBe(this.n);
      for (const p of pages) adopt(m, p, this.order, gfp);
    }
    checkState(m, r);
  }
  toString = () => `allocBulk(${this.n}, ${this.gfp}, ${this.order})`;
}

/** Allocates until the pool says no: every step must agree with the model, so each mask's floor is hit exactly. */
class FillCmd implements Cmd {
  constructor(
    readonly order: number,
    readonly gfp: GfpName,
  ) {}
  check = () => true;
  run(m: Model, r: Real): void {
    const step = new AllocCmd(this.order, this.gfp);
    for (let i = 0; i <= TOTAL; i++) {
      const before = m.live.length;
      step.run(m, r, false);
      if (m.live.length === before) {
        checkState(m, r);
        return;
      }
    }
    throw new Error('more blocks than pages');
  }
  toString = () => `fill(${this.gfp}, ${this.order})`;
}

class FreeCmd implements Cmd {
  constructor(readonly i: number) {}
  check = (m: Readonly<Model>) => m.live.length > 0;
  run(m: Model, r: Real): void {
    const [b] = m.live.splice(this.i % m.live.length, 1);
    checkStamp(b!);
    r.pool.free(b!.page);
    m.freed.push(b!.page);
    checkState(m, r);
  }
  toString = () => `free(#${this.i})`;
}

class FreeBulkCmd implements Cmd {
  constructor(readonly picks: number[]) {}
  check = (m: Readonly<Model>) => m.live.length > 0;
  run(m: Model, r: Real): void {
    const chosen = new Set(this.picks.map((k) => k % m.live.length));
    const blocks = m.live.filter((_, k) => chosen.has(k));
    m.live = m.live.filter((_, k) => !chosen.has(k));
    for (const b of blocks) checkStamp(b);
    r.pool.freeBulk(blocks.map((b) => b.page));
    m.freed.push(...blocks.map((b) => b.page));
    checkState(m, r);
  }
  toString = () => `freeBulk(${this.picks.map((k) => `#${k}`).join(', ')})`;
}

/** An error that must change nothing. */
function expectHarmless(m: Model, r: Real, fn: () => unknown, code: string): void {
  const { freePages, allocatedPages, cachedPages, frees } = counts(r);
  expectCode(fn, code);
  const after = checkState(m, r);
  expect([after.freePages, after.allocatedPages, after.cachedPages, after.frees]).toEqual([
    freePages,
    allocatedPages,
    cachedPages,
    frees,
  ]);
}

class DoubleFreeCmd implements Cmd {
  constructor(
    readonly i: number,
    readonly bulk: boolean,
  ) {}
  check = (m: Readonly<Model>) => m.freed.length > 0;
  run(m: Model, r: Real): void {
    const p = m.freed[this.i % m.freed.length]!;
    expectHarmless(m, r, () => (this.bulk ? r.pool.freeBulk([p]) : r.pool.free(p)), 'ERR_DOUBLE_FREE');
  }
  toString = () => `${this.bulk ? 'freeBulk' : 'free'}(freed #${this.i})`;
}

class ForgedFreeCmd implements Cmd {
  constructor(
    readonly pfn: number,
    readonly order: number,
    readonly useLive: boolean,
  ) {}
  check = () => true;
  run(m: Model, r: Real): void {
    // Forge the handle of a live block when there is one: the worst case.
    const b = this.useLive && m.live.length > 0 ? m.live[this.pfn % m.live.length]! : undefined;
    const forged = b ? { pfn: b.pfn, order: b.order } : { pfn: this.pfn, order: this.order };
    expectHarmless(m, r, () => r.pool.free(forged as unknown as Page), 'ERR_BAD_PAGE');
  }
  toString = () => `free(forged ${this.useLive ? `live #${this.pfn}` : `{pfn: ${this.pfn}, order: ${this.order}}`})`;
}

class DuplicateBulkCmd implements Cmd {
  constructor(readonly i: number) {}
  check = (m: Readonly<Model>) => m.live.length > 0;
  run(m: Model, r: Real): void {
    const b = m.live[this.i % m.live.length]!;
    const others = m.live.filter((x) => x !== b).map((x) => x.page);
    expectHarmless(m, r, () => r.pool.freeBulk([b.page, ...others, b.page]), 'ERR_DOUBLE_FREE');
  }
  toString = () => `freeBulk(live #${this.i} twice)`;
}

class TransferCmd implements Cmd {
  constructor(readonly i: number) {}
  check = (m: Readonly<Model>) => m.live.length > 0;
  run(m: Model, r: Real): void {
    const b = m.live[this.i % m.live.length]!;
    const old = b.page;
    const d = r.pool.transfer(old);
    m.moved.push(old);
    const page = r.pool.adopt(structuredClone(d));
    expect(page.pfn).toBe(b.pfn);
    expect(page.order).toBe(b.order);
    b.page = page;
    expectHarmless(m, r, () => r.pool.free(old), 'ERR_BAD_PAGE');
  }
  toString = () => `transfer+adopt(#${this.i})`;
}

class MovedFreeCmd implements Cmd {
  constructor(readonly i: number) {}
  check = (m: Readonly<Model>) => m.moved.length > 0;
  run(m: Model, r: Real): void {
    const p = m.moved[this.i % m.moved.length]!;
    expectHarmless(m, r, () => r.pool.free(p), 'ERR_BAD_PAGE');
  }
  toString = () => `free(transferred #${this.i})`;
}

const order = fc.integer({ min: 0, max: MAX_ORDER });
const gfpName = fc.constantFrom<GfpName>('KERNEL', 'ATOMIC', 'NOWAIT', 'KERNEL|ZERO');
const index = fc.nat({ max: 63 });
const commands = fc.commands(
  [
    fc.tuple(fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, order), gfpName).map(([o, g]) => new AllocCmd(o, g)),
    fc.tuple(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 2 }), gfpName).map(
      ([n, o, g]) => new AllocBulkCmd(n, o, g),
    ),
    fc.tuple(fc.integer({ min: 0, max: 2 }), gfpName).map(([o, g]) => new FillCmd(o, g)),
    index.map((i) => new FreeCmd(i)),
    index.map((i) => new FreeCmd(i)),
    fc.array(index, { minLength: 1, maxLength: 6 }).map((picks) => new FreeBulkCmd(picks)),
    fc.tuple(index, fc.boolean()).map(([i, bulk]) => new DoubleFreeCmd(i, bulk)),
    fc.tuple(fc.nat({ max: TOTAL - 1 }), order, fc.boolean()).map(([p, o, live]) => new ForgedFreeCmd(p, o, live)),
    index.map((i) => new DuplicateBulkCmd(i)),
    index.map((i) => new TransferCmd(i)),
    index.map((i) => new MovedFreeCmd(i)),
  ],
  { maxCommands: 40 },
);

function openReal(options: PoolOptions): Real {
  const pool = Pool.create({ size: TOTAL * PAGE_SIZE, maxOrder: MAX_ORDER, watermarks: WMARK, ...options });
  const h = pool.handle;
  const ctl = new Int32Array(h.control);
  return { pool, slot: native.attach(h.id, h.nonce, ctl).slot, ctl };
}

function closeReal(r: Real): void {
  native.detach(r.slot);
  r.pool.close();
}

function runSequence(options: PoolOptions, cmds: Iterable<Cmd>): void {
  const real = openReal(options);
  const model: Model = { live: [], freed: [], moved: [], nextStamp: 1 };
  try {
    fc.modelRun(() => ({ model, real }), cmds);
    // The public stats agree with the raw counters.
    const c = checkState(model, real);
    const s = real.pool.stats();
    expect([s.freePages, s.allocatedPages, s.cachedPages, s.threadPages, s.counters.frees, s.buddyinfo]).toEqual([
      c.freePages,
      c.allocatedPages,
      c.cachedPages,
      c.threadPages,
      c.frees,
      c.buddyinfo,
    ]);
    real.pool.checkInvariants();
    real.pool.freeBulk(model.live.map((b) => b.page));
    model.live = [];
    checkState(model, real);
    const end = real.pool.stats();
    expect(end.freePages + end.cachedPages).toBe(TOTAL);
    real.pool.checkInvariants();
  } finally {
    closeReal(real);
  }
}

describe('model-based: random operation sequences against a reference model', () => {
  it.each([
    ['without a page cache', { pcp: false } as PoolOptions],
    ['with a small page cache', { pcp: { batch: 4, high: 8 } } as PoolOptions],
  ])('%s', (_name, options) => {
    fc.assert(
      fc.property(commands, (cmds) => runSequence(options, cmds)),
      { numRuns: RUNS },
    );
  });

  it('the model catches a broken allocator (self-test)', () => {
    // A sequence the model must reject if the pool handed out an overlapping block.
    const real = openReal({ pcp: false });
    const { pool } = real;
    try {
      const m: Model = { live: [], freed: [], moved: [], nextStamp: 1 };
      const a = pool.alloc(GFP.KERNEL, 1);
      adopt(m, a, 1, GFP.KERNEL);
      // Pretend a second live block covers a's second page.
      m.live.push({ pfn: a.pfn + 1, order: 0, page: a, stamp: 99 });
      expect(() => checkState(m, real)).toThrow();
      // And that a block whose memory was overwritten is noticed.
      m.live.pop();
      a.bytes[PAGE_SIZE + 5] = 0; // harmless: not a stamp word
      checkState(m, real);
      a.bytes.fill(0, PAGE_SIZE, PAGE_SIZE + 4);
      expect(() => checkState(m, real)).toThrow(/lost its stamp/);
      pool.free(a);
    } finally {
      closeReal(real);
    }
  });
});
