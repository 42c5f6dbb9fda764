/**
 * The addon validates everything that could corrupt memory even when it is
 * called directly, past the TypeScript checks (STYLE habit 3): wrong types,
 * NaN, infinities, negatives, fractions, huge numbers, out-of-range slots,
 * pfns and orders, tail pages, stale generations. Each bad call throws a
 * typed error with a stable code, and the pool still adds up afterwards.
 *
 * The raw calls go through a second attachment of a Pool made with
 * native.attach(), so that pool.checkInvariants() checks the same native
 * pool the raw calls hit.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidArgTypeError, OutOfRangeError, PAGE_SIZE, Pool } from '../../../src/index.js';
import { FILL, native, type NativeCreateOptions, STATUS } from '../../../src/binding/native.js';
import { expectAccounting, expectCode } from '../../fixtures/expect.js';

type Raw = (...args: unknown[]) => unknown;
const raw = native as unknown as Record<string, Raw>;
const call = (name: string, ...args: unknown[]) => raw[name]!(...args);

const TOTAL = 256;
const MAX_ORDER = 4;
const GEN = 2 ** native.genBits;
const BAD_INDEX: Array<[unknown, string]> = [
  ['0', 'ERR_INVALID_ARG_TYPE'],
  [null, 'ERR_INVALID_ARG_TYPE'],
  [undefined, 'ERR_INVALID_ARG_TYPE'],
  [{}, 'ERR_INVALID_ARG_TYPE'],
  [0n, 'ERR_INVALID_ARG_TYPE'],
  [true, 'ERR_INVALID_ARG_TYPE'],
  [NaN, 'ERR_OUT_OF_RANGE'],
  [Infinity, 'ERR_OUT_OF_RANGE'],
  [-Infinity, 'ERR_OUT_OF_RANGE'],
  [-1, 'ERR_OUT_OF_RANGE'],
  [0.5, 'ERR_OUT_OF_RANGE'],
  [2 ** 53, 'ERR_OUT_OF_RANGE'],
  [1e300, 'ERR_OUT_OF_RANGE'],
];

/** native create()'s options: a 16-page pool unless `over` says otherwise. */
function createOptions(over: Partial<NativeCreateOptions> = {}): NativeCreateOptions {
  return { bytes: 16 * PAGE_SIZE, maxOrder: 4, min: 0, low: 0, high: 0, populate: false, mlock: false, hugepages: false, fill: FILL.NONE, releaseOrder: -1, ...over };
}

let pool: Pool;
let slot: number;
let task: number;

beforeEach(() => {
  pool = Pool.create({ size: TOTAL * PAGE_SIZE, maxOrder: MAX_ORDER, watermarks: { min: 0, low: 0, high: 0 }, pcp: false });
  const h = pool.handle;
  const r = native.attach(h.id, h.nonce, new Int32Array(h.control));
  expect(r).toEqual({ slot: expect.any(Number), id: h.id, nonce: h.nonce, nrPages: TOTAL, maxOrder: MAX_ORDER, task: expect.any(Number) });
  slot = r.slot;
  task = r.task;
});
afterEach(() => {
  native.detach(slot);
  // After every bad call the pool adds up, and the raw attachment's pages all came back.
  expectAccounting(pool, 0);
  pool.close();
});

/** alloc through the raw attachment: [pfn, gen]. */
function rawAlloc(order = 0): [number, number] {
  const v = native.alloc(slot, order, 0, 0);
  expect(v).toBeGreaterThanOrEqual(0);
  const pfn = Math.floor(v / GEN);
  return [pfn, v - pfn * GEN];
}

describe('raw addon: arguments', () => {
  it('every entry point wants its arguments', () => {
    for (const name of ['alloc', 'free', 'allocBulk', 'freeBulk', 'setOwner', 'meta', 'create', 'attach', 'detach', 'taskLive']) {
      expectCode(() => call(name), 'ERR_INVALID_ARG_TYPE', /expected \d+ arguments, got 0/);
    }
    expectCode(() => call('alloc', slot, 0, 0), 'ERR_INVALID_ARG_TYPE', /expected 4 arguments, got 3/);
  });

  it('slots: bad values, unknown and detached slots', () => {
    const out = new Float64Array(native.statsLength);
    for (const [bad, code] of BAD_INDEX) {
      expectCode(() => call('alloc', bad, 0, 0, 0), code, /slot/);
      expectCode(() => call('free', bad, 0, 0, 0), code, /slot/);
      expectCode(() => call('stats', bad, out), code, /slot/);
      expectCode(() => call('check', bad), code, /slot/);
      expectCode(() => call('region', bad, 0), code, /slot/);
      expectCode(() => call('meta', bad, 0), code, /slot/);
    }
    expectCode(() => call('alloc', 9999, 0, 0, 0), 'ERR_OUT_OF_RANGE', /slot/);
    const { slot: other } = native.attach(pool.handle.id, pool.handle.nonce, new Int32Array(pool.handle.control));
    native.detach(other);
    expect(native.detach(other)).toBe(0); // idempotent
    expect(native.detach(123456)).toBe(0);
    expectCode(() => call('alloc', other, 0, 0, 0), 'ERR_POOL_CLOSED');
    expectCode(() => call('free', other, 0, 0, 0), 'ERR_POOL_CLOSED');
    expectCode(() => call('region', other, 0), 'ERR_POOL_CLOSED');
    expectCode(() => call('stats', other, out), 'ERR_POOL_CLOSED');
    expectCode(() => call('taskCreate', other), 'ERR_POOL_CLOSED');
  });

  it('errors are the classes src/errors.ts registered', () => {
    expect(expectCode(() => call('alloc', slot, '0', 0, 0), 'ERR_INVALID_ARG_TYPE')).toBeInstanceOf(InvalidArgTypeError);
    expect(expectCode(() => call('alloc', slot, 99, 0, 0), 'ERR_OUT_OF_RANGE')).toBeInstanceOf(OutOfRangeError);
    expectCode(() => call('init', 5), 'ERR_INVALID_ARG_TYPE');
  });
});

describe('raw addon: alloc and free', () => {
  it('alloc validates order, allocFlags and task', () => {
    for (const [bad, code] of BAD_INDEX) expectCode(() => call('alloc', slot, bad, 0, 0), code, /order/);
    expectCode(() => call('alloc', slot, MAX_ORDER + 1, 0, 0), 'ERR_OUT_OF_RANGE', /order.*<= 4/);
    for (const [bad, code] of BAD_INDEX) expectCode(() => call('alloc', slot, 0, bad, 0), code, /allocFlags/);
    expectCode(() => call('alloc', slot, 0, 0x80, 0), 'ERR_OUT_OF_RANGE', /allocFlags/);
    expectCode(() => call('alloc', slot, 0, 3, 0), 'ERR_OUT_OF_RANGE', /watermark level/);
    for (const [bad, code] of BAD_INDEX) expectCode(() => call('alloc', slot, 0, 0, bad), code, /task/);
    expectCode(() => call('alloc', slot, 0, 0, 2 ** 29), 'ERR_OUT_OF_RANGE', /task/);
    expectCode(() => call('alloc', slot, 0, 0, 12345), 'ERR_OUT_OF_RANGE', /no such live task/);
    expect(pool.stats().allocatedPages).toBe(0);
  });

  it('alloc returns pfn * 2^genBits + gen, or a negative status', () => {
    const [pfn, gen] = rawAlloc(2);
    expect(pfn % 4).toBe(0);
    expect(pool._meta(pfn)).toEqual({ state: 'allocated', order: 2, owner: task, gen });
    const big = [];
    for (let i = 0; i < TOTAL / 16 - 1; i++) big.push(rawAlloc(4));
    // Only 12 pages left, none in an order-4 block: a negative status, not a throw.
    expect(native.alloc(slot, 4, 0, 0)).toBeLessThan(0);
    expect(native.alloc(slot, 4, 0x4, 0)).toBeLessThan(0);
    native.free(slot, pfn, 2, gen);
    for (const [p, g] of big) native.free(slot, p, 4, g);
  });

  it('free validates pfn, order and gen', () => {
    const [pfn, gen] = rawAlloc(2);
    for (const [bad, code] of BAD_INDEX) expectCode(() => call('free', slot, bad, 2, gen), code, /pfn/);
    expectCode(() => call('free', slot, TOTAL, 2, gen), 'ERR_OUT_OF_RANGE', /pfn/);
    for (const [bad, code] of BAD_INDEX) expectCode(() => call('free', slot, pfn, bad, gen), code, /order/);
    expectCode(() => call('free', slot, pfn, MAX_ORDER + 1, gen), 'ERR_OUT_OF_RANGE');
    for (const [bad, code] of BAD_INDEX) expectCode(() => call('free', slot, pfn, 2, bad), code, /gen/);
    expectCode(() => call('free', slot, pfn, 2, GEN), 'ERR_OUT_OF_RANGE', /gen/);
    // Tail pages, wrong orders and stale generations are not the block.
    expectCode(() => call('free', slot, pfn + 1, 0, gen), 'ERR_BAD_PAGE');
    expectCode(() => call('free', slot, pfn + 2, 1, gen), 'ERR_BAD_PAGE');
    expectCode(() => call('free', slot, pfn, 1, gen), 'ERR_BAD_PAGE');
    expectCode(() => call('free', slot, pfn, 3, gen), 'ERR_BAD_PAGE');
    expectCode(() => call('free', slot, pfn, 2, (gen + 1) % GEN), 'ERR_BAD_PAGE');
    expect(pool._meta(pfn)).toMatchObject({ state: 'allocated', order: 2, gen });
    expectAccounting(pool, 4);
    native.free(slot, pfn, 2, gen);
    // Now it is a free head: a double free, with the old or any generation.
    expectCode(() => call('free', slot, pfn, 2, gen), 'ERR_DOUBLE_FREE');
    expectCode(() => call('free', slot, pfn, 2, 0), 'ERR_DOUBLE_FREE');
  });

  it('a stale handle cannot free the block that reused its pfn', () => {
    const [pfn, gen] = rawAlloc(0);
    native.free(slot, pfn, 0, gen);
    const [pfn2, gen2] = rawAlloc(0);
    expect(pfn2).toBe(pfn);
    expect(gen2).not.toBe(gen);
    expectCode(() => native.free(slot, pfn, 0, gen), 'ERR_BAD_PAGE');
    expectAccounting(pool, 1);
    native.free(slot, pfn2, 0, gen2);
  });
});

describe('raw addon: bulk calls', () => {
  it('allocBulk validates n, order, flags, task and the out array', () => {
    const out = new Int32Array(2 * 8);
    for (const [bad, code] of BAD_INDEX) expectCode(() => call('allocBulk', slot, bad, 0, 0, 0, out), code, /"n"/);
    expectCode(() => call('allocBulk', slot, TOTAL + 1, 0, 0, 0, new Int32Array(2 * TOTAL + 2)), 'ERR_OUT_OF_RANGE');
    expectCode(() => call('allocBulk', slot, 9, 0, 0, 0, out), 'ERR_OUT_OF_RANGE', /too short/);
    for (const bad of [new Float64Array(16), new Uint32Array(16), [0, 0], new ArrayBuffer(64), null, 'out']) {
      expectCode(() => call('allocBulk', slot, 1, 0, 0, 0, bad), 'ERR_INVALID_ARG_TYPE', /Int32Array/);
    }
    expectCode(() => call('allocBulk', slot, 1, MAX_ORDER + 1, 0, 0, out), 'ERR_OUT_OF_RANGE');
    expectCode(() => call('allocBulk', slot, 1, 0, 0x80, 0, out), 'ERR_OUT_OF_RANGE');
    for (const [bad, code] of BAD_INDEX) expectCode(() => call('allocBulk', slot, 1, 0, 0, bad, out), code, /task/);
    expect(native.allocBulk(slot, 0, 0, 0, 0, new Int32Array(0))).toBe(0);
    expect(pool.stats().allocatedPages).toBe(0);
    // Too many at once is a status, not a throw, and takes nothing.
    expect(native.allocBulk(slot, TOTAL / 16 + 1, 4, 0, 0, new Int32Array(2 * TOTAL))).toBeLessThan(0);
    expect(pool.stats().allocatedPages).toBe(0);
  });

  // Regression test (fixed): native/core/zone.cc allocBulkLocked kept the pfns it took in the
  // caller's `out` and read them back, and on a fragmented refusal wrote
  // the pfns of the blocks it had taken (and given back) there. `out` may be
  // over a SharedArrayBuffer another thread writes, so native code now only
  // writes it, and decides all-or-none before taking anything.
  it('a fragmented allocBulk takes nothing and writes nothing to out', () => {
    const all = new Int32Array(2 * TOTAL);
    expect(native.allocBulk(slot, TOTAL, 0, 0, 0, all)).toBe(TOTAL);
    // Free pages 0..3 (one order-2 block: two order-1 blocks) and every
    // other page above them (singles whose buddies stay allocated).
    let held = 0;
    for (let i = 0; i < TOTAL; i++) {
      const pfn = all[2 * i]!;
      if (pfn < 4 || pfn % 2 === 0) native.free(slot, pfn, 0, all[2 * i + 1]!);
      else held++;
    }
    const free = pool.stats().freePages;
    expect(free).toBeGreaterThan(3 * 2);
    const out = new Int32Array(6).fill(-7);
    expect(native.allocBulk(slot, 3, 1, 0, 0, out)).toBe(STATUS.NOMEM_FRAGMENTED);
    expect(Array.from(out)).toEqual([-7, -7, -7, -7, -7, -7]);
    expect(pool.stats().freePages).toBe(free);
    expectAccounting(pool, held);
    // Exactly as many as there are is not too many.
    expect(native.allocBulk(slot, 2, 1, 0, 0, out)).toBe(2);
    expect([out[0], out[2]].sort()).toEqual([0, 2]);
    expect(pool._meta(out[2]!)).toMatchObject({ state: 'allocated', order: 1, gen: out[3] });
    expectAccounting(pool, held + 4);
  });

  it('freeBulk past one batch (1024 refs) counts what it freed across the batches', () => {
    const pages = 2048;
    const { slot: s } = native.create(createOptions({ bytes: pages * PAGE_SIZE, maxOrder: 10 }), new Int32Array(new SharedArrayBuffer(native.controlSlots * 4)));
    try {
      const n = 1500;
      const pairs = new Int32Array(2 * n);
      expect(native.allocBulk(s, n, 0, 0, 0, pairs)).toBe(n);
      const refs = new Int32Array(3 * n);
      for (let i = 0; i < n; i++) refs.set([pairs[2 * i]!, 0, pairs[2 * i + 1]!], 3 * i);
      refs[3 * 1300 + 2] = (pairs[2 * 1300 + 1]! + 1) % GEN; // a stale gen in the second batch
      const err = expectCode(() => native.freeBulk(s, refs, n), 'ERR_BAD_PAGE', /freeBulk entry 1300/);
      expect((err as unknown as { freed: number }).freed).toBe(1300);
      const st = new Float64Array(native.statsLength);
      native.stats(s, st);
      expect(st[native.statIndex.allocatedPages!]).toBe(n - 1300);
      refs[3 * 1300 + 2] = pairs[2 * 1300 + 1]!;
      expect(native.freeBulk(s, refs.subarray(3 * 1300), n - 1300)).toBe(n - 1300);
      native.stats(s, st);
      expect(st[native.statIndex.freePages!]).toBe(pages);
      expect(native.check(s)).toBeNull();
    } finally {
      native.detach(s);
    }
  });

  // Regression test (fixed): native/binding/page_api.cc AllocBulk returns Pool::allocBulk()'s
  // Status::kNoTask (-6) as a plain negative number, where alloc() throws
  // ERR_OUT_OF_RANGE "no such live task"; Pool.allocBulk then reports it as
  // ENOMEM.
  it('allocBulk for a task that is not live throws like alloc', () => {
    expectCode(() => native.allocBulk(slot, 1, 0, 0, 12345, new Int32Array(2)), 'ERR_OUT_OF_RANGE', /no such live task/);
  });

  it('freeBulk validates refs and n, and reports how many it freed before a bad entry', () => {
    const a = rawAlloc(0);
    const b = rawAlloc(1);
    const c = rawAlloc(2);
    const refs = new Int32Array([a[0], 0, a[1], b[0], 1, b[1], c[0], 2, c[1]]);
    for (const bad of [new Float64Array(9), Array.from(refs), null]) {
      expectCode(() => call('freeBulk', slot, bad, 3), 'ERR_INVALID_ARG_TYPE');
    }
    expectCode(() => call('freeBulk', slot, refs, 4), 'ERR_OUT_OF_RANGE', /too short/);
    for (const [bad, code] of BAD_INDEX) expectCode(() => call('freeBulk', slot, refs, bad), code);

    const cases: Array<[string, number[], string]> = [
      ['order out of range', [a[0], 99, a[1]], 'ERR_OUT_OF_RANGE'],
      ['negative order', [a[0], -1, a[1]], 'ERR_OUT_OF_RANGE'],
      ['pfn out of range', [TOTAL, 0, 0], 'ERR_OUT_OF_RANGE'],
      ['negative pfn', [-1, 0, 0], 'ERR_OUT_OF_RANGE'],
      ['tail page', [c[0] + 1, 0, c[1]], 'ERR_BAD_PAGE'],
      ['wrong order', [b[0], 0, b[1]], 'ERR_BAD_PAGE'],
      ['stale gen', [b[0], 1, (b[1] + 1) % GEN], 'ERR_BAD_PAGE'],
      ['a free block', [c[0] + 4, 2, 0], 'ERR_DOUBLE_FREE'],
    ];
    for (const [name, entry, code] of cases) {
      const err = expectCode(() => native.freeBulk(slot, new Int32Array(entry), 1), code, /freeBulk entry 0/);
      expect((err as unknown as { freed: number }).freed, name).toBe(0);
    }
    expectAccounting(pool, 7);

    // Entries before the bad one are freed, the rest are not.
    const err = expectCode(
      () => native.freeBulk(slot, new Int32Array([a[0], 0, a[1], c[0] + 1, 0, 0, b[0], 1, b[1]]), 3),
      'ERR_BAD_PAGE',
      /freeBulk entry 1/,
    );
    expect((err as unknown as { freed: number }).freed).toBe(1);
    expect(pool._meta(a[0]).state).not.toBe('allocated');
    expect(pool._meta(b[0])).toMatchObject({ state: 'allocated', order: 1 });
    expectAccounting(pool, 6);
    expect(native.freeBulk(slot, new Int32Array([b[0], 1, b[1], c[0], 2, c[1]]), 2)).toBe(2);
  });

  // Regression test (fixed): native/sync/pool.cc Pool::freeBulk passes each entry's gen straight
  // to Zone::freeLocked, where 0xffffffff is Zone::kAnyGen ("skip the gen
  // check"); freeBulk never range-checks gen the way free() does (readGen),
  // so a raw freeBulk entry with gen -1 frees any allocated block, stale
  // handle or not.
  it('freeBulk does not accept gen -1 (kAnyGen) as a wildcard', () => {
    const [pfn, gen] = rawAlloc(0);
    const err = expectCode(() => native.freeBulk(slot, new Int32Array([pfn, 0, -1]), 1), [
      'ERR_BAD_PAGE',
      'ERR_OUT_OF_RANGE',
    ]);
    expect((err as unknown as { freed: number }).freed).toBe(0);
    expect(pool._meta(pfn)).toMatchObject({ state: 'allocated', gen });
    native.free(slot, pfn, 0, gen);
  });
});

describe('raw addon: ownership, tasks and metadata', () => {
  it('setOwner validates the block, the task and the expected owner', () => {
    const [pfn, gen] = rawAlloc(1);
    expectCode(() => call('setOwner', slot, pfn, 1, gen, 0), 'ERR_INVALID_ARG_TYPE', /expected 6 arguments/);
    expectCode(() => call('setOwner', slot, pfn, 1, (gen + 1) % GEN, 0, 0), 'ERR_BAD_PAGE');
    expectCode(() => call('setOwner', slot, pfn, 0, gen, 0, 0), 'ERR_BAD_PAGE');
    expectCode(() => call('setOwner', slot, pfn + 1, 0, gen, 0, 0), 'ERR_BAD_PAGE');
    expectCode(() => call('setOwner', slot, TOTAL, 0, gen, 0, 0), 'ERR_OUT_OF_RANGE');
    expectCode(() => call('setOwner', slot, pfn, 1, gen, 12345, 0), 'ERR_OUT_OF_RANGE', /no such live task/);
    for (const [bad, code] of BAD_INDEX) {
      expectCode(() => call('setOwner', slot, pfn, 1, gen, bad, 0), code, /task/);
      expectCode(() => call('setOwner', slot, pfn, 1, gen, 0, bad), code, /expectOwner/);
    }
    // The block is not the expected owner's.
    expectCode(() => call('setOwner', slot, pfn, 1, gen, pool.taskId, pool.taskId), 'ERR_BAD_PAGE');
    expect(pool._meta(pfn).owner).toBe(task);
    expect(native.taskPages(slot, 0)).toBe(2);
    // A good hand-over moves the pages in the ledger.
    native.setOwner(slot, pfn, 1, gen, pool.taskId, task);
    expect(pool._meta(pfn).owner).toBe(pool.taskId);
    expect(pool.stats().threadPages).toBe(2);
    expect(native.taskPages(slot, 0)).toBe(0);
    native.free(slot, pfn, 1, gen);
    expect(pool.stats().threadPages).toBe(0);
  });

  it('meta validates pfn', () => {
    for (const [bad, code] of BAD_INDEX) expectCode(() => call('meta', slot, bad), code, /pfn/);
    expectCode(() => call('meta', slot, TOTAL), 'ERR_OUT_OF_RANGE');
    expect(native.meta(slot, 0)).toEqual([1, MAX_ORDER, 0, 0]);
    expect(native.meta(slot, 1)).toEqual([0, 0, 0, 0]);
  });

  it('tasks: create, charge, reclaim, retire', () => {
    const tasks = pool.stats().tasks;
    const t = native.taskCreate(slot);
    expect(pool.stats().tasks).toBe(tasks + 1);
    expect(native.taskLive(slot, t)).toBe(true);
    const v = native.alloc(slot, 2, 0, t);
    expect(v).toBeGreaterThanOrEqual(0);
    native.alloc(slot, 0, 0, t);
    expect(native.taskPages(slot, t)).toBe(5);
    expectCode(() => call('taskReclaim', slot, t, 'yes'), 'ERR_INVALID_ARG_TYPE', /retire/);
    expectCode(() => call('taskReclaim', slot, 0, true), 'ERR_OUT_OF_RANGE', /own task/);
    expectCode(() => call('taskReclaim', slot, task, true), 'ERR_OUT_OF_RANGE', /own task/);
    for (const [bad, code] of BAD_INDEX) {
      expectCode(() => call('taskReclaim', slot, bad, true), code, /task/);
      expectCode(() => call('taskLive', slot, bad), code, /task/);
    }
    expect(native.taskReclaim(slot, t, true)).toBe(5);
    expect(native.taskLive(slot, t)).toBe(false);
    expect(native.taskLive(slot, 0)).toBe(false);
    expect(pool.stats().tasks).toBe(tasks);
    expect(pool.stats().allocatedPages).toBe(0);
    // A retired task cannot allocate.
    expectCode(() => native.alloc(slot, 0, 0, t), 'ERR_OUT_OF_RANGE', /no such live task/);
  });

  // Regression test (fixed): native/binding/pool_api.cc TaskReclaim returns Pool::reclaimTask()'s
  // result as is, and for a task that is not live that is Status::kNoTask
  // (-6): a negative "pages returned" instead of the typed error alloc and
  // setOwner throw for the same condition.
  it('taskReclaim of a task that is not live throws', () => {
    const t = native.taskCreate(slot);
    expect(native.taskReclaim(slot, t, true)).toBe(0);
    expectCode(() => native.taskReclaim(slot, t, true), 'ERR_OUT_OF_RANGE', /no such live task/);
    expectCode(() => native.taskReclaim(slot, 12345, false), 'ERR_OUT_OF_RANGE', /no such live task/);
  });

  it('setWatermarks and addReserved validate their numbers', () => {
    for (const [bad, code] of BAD_INDEX) expectCode(() => call('setWatermarks', slot, bad, 0, 0), code, /min/);
    expectCode(() => call('setWatermarks', slot, 0, 0, TOTAL + 1), 'ERR_OUT_OF_RANGE', /high/);
    expectCode(() => call('setWatermarks', slot, 10, 5, 20), 'ERR_OUT_OF_RANGE', /min <= low <= high/);
    expectCode(() => call('setWatermarks', slot, 10, 20, 15), 'ERR_OUT_OF_RANGE', /min <= low <= high/);
    expect(pool.stats().watermarks).toEqual({ min: 0, low: 0, high: 0 });
    native.setWatermarks(slot, 10, 20, 30);
    expect(pool.stats().watermarks).toEqual({ min: 10, low: 20, high: 30 });
    native.setWatermarks(slot, 0, 0, 0);

    expectCode(() => call('addReserved', slot, -1), 'ERR_OUT_OF_RANGE', /below zero/);
    expectCode(() => call('addReserved', slot, TOTAL + 1), 'ERR_OUT_OF_RANGE', /delta/);
    expectCode(() => call('addReserved', slot, -(TOTAL + 1)), 'ERR_OUT_OF_RANGE', /delta/);
    for (const bad of [0.5, NaN, Infinity]) expectCode(() => call('addReserved', slot, bad), 'ERR_OUT_OF_RANGE');
    expectCode(() => call('addReserved', slot, '1'), 'ERR_INVALID_ARG_TYPE');
    expect(native.addReserved(slot, 10)).toBe(10);
    expect(pool.stats().reservedPages).toBe(10);
    expect(native.addReserved(slot, -10)).toBe(0);
    expect(pool.stats().reservedPages).toBe(0);
  });

  it('stats validates its out array', () => {
    expectCode(() => call('stats', slot, new Float64Array(3)), 'ERR_OUT_OF_RANGE', /too short/);
    expectCode(() => call('stats', slot, new Int32Array(native.statsLength)), 'ERR_INVALID_ARG_TYPE');
    expectCode(() => call('stats', slot, []), 'ERR_INVALID_ARG_TYPE');
    expect(native.check(slot)).toBeNull();
  });
});

describe('raw addon: create and attach', () => {
  const ctl = () => new Int32Array(new SharedArrayBuffer(native.controlSlots * 4));
  const FIELDS = ['bytes', 'maxOrder', 'min', 'low', 'high', 'populate', 'mlock', 'hugepages', 'fill', 'releaseOrder'] as const;
  const withField = (field: string, v: unknown): unknown => ({ ...createOptions(), [field]: v });

  it('create validates every option, by name', () => {
    for (const field of FIELDS) {
      const bool = field === 'populate' || field === 'mlock' || field === 'hugepages';
      // A missing field is a caller's mistake: TypeScript resolves every default.
      const { [field]: _, ...missing } = createOptions();
      expectCode(() => call('create', missing, ctl()), 'ERR_INVALID_ARG_TYPE', new RegExp(`options\\.${field}`));
      for (const [bad, code] of BAD_INDEX) {
        if (field === 'releaseOrder' && bad === -1) continue; // the good value: never release
        if (field === 'fill' && bad === -1) continue; // FILL.NONE
        if (bool) {
          if (typeof bad === 'boolean') continue;
          expectCode(() => call('create', withField(field, bad), ctl()), 'ERR_INVALID_ARG_TYPE', new RegExp(`options\\.${field}`));
        } else {
          expectCode(() => call('create', withField(field, bad), ctl()), code, new RegExp(`options\\.${field}`));
        }
      }
    }
    for (const bad of [null, undefined, 5, 'options', Symbol('o')]) {
      expectCode(() => call('create', bad, ctl()), 'ERR_INVALID_ARG_TYPE', /options/);
    }
    expectCode(() => call('create', { ...createOptions(), flags: 1 }, ctl()), 'ERR_OUT_OF_RANGE', /no field 'flags'/);
    expectCode(() => call('create', withField('bytes', 0), ctl()), 'ERR_OUT_OF_RANGE', /size/);
    expectCode(() => call('create', withField('bytes', 4097), ctl()), 'ERR_OUT_OF_RANGE', /multiple of 4096/);
    expectCode(() => call('create', withField('bytes', 2 ** 29 * PAGE_SIZE), ctl()), 'ERR_OUT_OF_RANGE');
    expectCode(() => call('create', withField('maxOrder', 16), ctl()), 'ERR_OUT_OF_RANGE', /maxOrder/);
    expectCode(() => call('create', createOptions({ min: 5, low: 4, high: 6 }), ctl()), 'ERR_OUT_OF_RANGE', /watermarks/);
    expectCode(() => call('create', createOptions({ high: 17 }), ctl()), 'ERR_OUT_OF_RANGE', /watermarks/);
    expectCode(() => call('create', withField('releaseOrder', 16), ctl()), 'ERR_OUT_OF_RANGE', /releaseOrder/);
    expectCode(() => call('create', withField('releaseOrder', -2), ctl()), 'ERR_OUT_OF_RANGE', /releaseOrder/);
    // fill is one of the named values the addon exports, nothing in between.
    for (const bad of [1, 0x6a, 0xff, -2]) expectCode(() => call('create', withField('fill', bad), ctl()), 'ERR_OUT_OF_RANGE', /fill/);
    const short = new Int32Array(new SharedArrayBuffer(64));
    expectCode(() => call('create', createOptions(), short), 'ERR_OUT_OF_RANGE', /control/);
    for (const bad of [
      new Float64Array(new SharedArrayBuffer(native.controlSlots * 8)),
      new SharedArrayBuffer(native.controlSlots * 4),
      null,
    ]) {
      expectCode(() => call('create', createOptions(), bad), 'ERR_INVALID_ARG_TYPE', /control/);
    }
    // And good ones work, each fill and the flags included.
    for (const fill of [FILL.NONE, FILL.ZERO, FILL.POISON]) {
      const r = native.create(createOptions({ fill, populate: true, releaseOrder: 2 }), ctl());
      expect(r).toMatchObject({ nrPages: 16, maxOrder: 4 });
      expect(Object.keys(r).sort()).toEqual(['id', 'maxOrder', 'nonce', 'nrPages', 'slot', 'task']);
      expect(native.check(r.slot)).toBeNull();
      native.detach(r.slot);
    }
  });

  it('the layout tables are the ones the core uses', () => {
    const { layout } = native;
    // Every table is frozen, and the names TypeScript builds its constants from are there.
    for (const t of [layout, layout.ctl, layout.regions, layout.task, layout.alloc, layout.status, layout.stat, layout.constants, layout.constants.fill]) {
      expect(Object.isFrozen(t)).toBe(true);
    }
    expect(layout.stat).toBe(native.statIndex);
    expect(layout.regions.CONTROL_BYTES).toBe(4 * native.controlSlots);
    expect(layout.constants.genBits).toBe(native.genBits);
    // What the core does agrees with what the tables say.
    const c = ctl();
    const r = native.create(createOptions({ min: 2, low: 3, high: 4 }), c);
    try {
      expect(c[layout.ctl.MAGIC!]).toBe(0x4e4f464c);
      expect([c[layout.ctl.WMARK_MIN!], c[layout.ctl.WMARK_LOW!], c[layout.ctl.WMARK_HIGH!]]).toEqual([2, 3, 4]);
      expect(c[layout.ctl.FREE_PAGES!]).toBe(16);
      expect(c[layout.ctl.ATTACHED!]).toBe(1);
      const v = native.alloc(r.slot, 0, layout.alloc.WMARK_MIN!, 0);
      expect(c[layout.ctl.FREE_PAGES!]).toBe(15);
      const seq = c[layout.ctl.FREE_SEQ!]!;
      native.free(r.slot, Math.floor(v / GEN), 0, v % GEN);
      expect(c[layout.ctl.FREE_SEQ!]).toBe(seq + 1);
      // A retired task's published words are cleared where the table says they are.
      const t = native.taskCreate(r.slot);
      const base = layout.regions.TASK_TABLE_BASE! + t * layout.regions.TASK_WORDS!;
      c[base + layout.task.CACHED!] = 7;
      c[base + layout.task.TOKENS!] = 8;
      c[base + layout.task.WAITING!] = 2;
      c[layout.ctl.WAITERS!] = 2;
      native.taskReclaim(r.slot, t, true);
      expect([c[base + layout.task.CACHED!], c[base + layout.task.TOKENS!], c[base + layout.task.WAITING!], c[layout.ctl.WAITERS!]]).toEqual([0, 0, 0, 0]);
      // A free-list status is the one the table names.
      for (let i = 0; i < 16; i++) native.alloc(r.slot, 0, layout.alloc.WMARK_MIN!, 0);
      expect(native.alloc(r.slot, 0, layout.alloc.WMARK_MIN!, 0)).toBe(layout.status.NOMEM_WATERMARK);
    } finally {
      native.detach(r.slot);
    }
  });

  // Regression test (fixed): native/binding/pool_api.cc readControl accepts any Int32Array, and
  // the pool keeps its raw data pointer. An ordinary ArrayBuffer can be
  // transferred (structuredClone/postMessage with transfer) and freed, after
  // which every alloc/free writes into freed memory. Native must insist on a
  // SharedArrayBuffer-backed control block.
  it('create refuses a control block that is not shared memory', () => {
    let s: number | undefined;
    try {
      expectCode(() => {
        s = native.create(createOptions(), new Int32Array(native.controlSlots)).slot;
      }, 'ERR_INVALID_ARG_TYPE', /control/);
    } finally {
      if (s !== undefined) native.detach(s);
    }
  });

  it('a transferred non-shared control block does not corrupt the process', () => {
    const fixture = fileURLToPath(new URL('../../fixtures/detached-control.mjs', import.meta.url));
    const dist = fileURLToPath(new URL('../../../dist/binding/native.js', import.meta.url));
    expect(existsSync(dist), 'run `npx tsc -p tsconfig.build.json` first').toBe(true);
    const r = spawnSync(process.execPath, ['--expose-gc', fixture], { encoding: 'utf8', timeout: 30_000 });
    expect({ status: r.status, signal: r.signal, stderr: r.stderr.slice(-500) }).toEqual({
      status: 0,
      signal: null,
      stderr: '',
    });
    expect(r.stdout).toMatch(/^(rejected ERR_INVALID_ARG_TYPE|done)/);
  });

  it('attach validates id, nonce and control', () => {
    const h = pool.handle;
    const c = new Int32Array(h.control);
    for (const [bad, code] of BAD_INDEX) {
      expectCode(() => call('attach', bad, h.nonce, c), code, /id/);
      expectCode(() => call('attach', h.id, bad, c), code, /nonce/);
    }
    expectCode(() => call('attach', h.id, 2 ** 32, c), 'ERR_OUT_OF_RANGE');
    expectCode(() => call('attach', h.id, (h.nonce + 1) >>> 0, c), 'ERR_POOL_CLOSED');
    expectCode(() => call('attach', 2 ** 32 - 1, h.nonce, c), 'ERR_POOL_CLOSED');
    expectCode(() => call('attach', h.id, h.nonce, ctl()), 'ERR_BAD_PAGE', /control block/);
    expectCode(() => call('attach', h.id, h.nonce, c.subarray(0, 16)), 'ERR_OUT_OF_RANGE', /too short/);
    expectCode(() => call('attach', h.id, h.nonce, new Float64Array(h.control)), 'ERR_INVALID_ARG_TYPE');
    expect(pool.stats().threads).toBe(2);
  });
});
