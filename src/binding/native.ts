/**
 * The one module that loads the addon and describes it (STYLE habit 1).
 * Everything else talks to native code through `native` below.
 *
 * NOFAIL_BUILD=Debug loads build/Debug (npm run build:debug), whose core
 * checks the accounting identities on every operation.
 */
import { createRequire } from 'node:module';
import { nativeErrorClasses } from '../errors.js';

/** ALLOC_* rights, as native/core/zone.h defines them. */
export const ALLOC = {
  WMARK_MIN: 0x0,
  WMARK_LOW: 0x1,
  WMARK_HIGH: 0x2,
  NO_WATERMARKS: 0x4,
  OOM: 0x8,
  NON_BLOCK: 0x10,
  MIN_RESERVE: 0x20,
  RESERVE: 0x40,
} as const;

/** The task that owns a page between transfer() and adopt() (native/sync/pool.h). */
export const TRANSIT_TASK = 1;

/** Negative results of alloc/allocBulk (native/core/status.h). */
export const STATUS = {
  NOMEM_WATERMARK: -1,
  NOMEM_FRAGMENTED: -2,
} as const;

/** [slot, id, nonce, nrPages, maxOrder, task] */
export type AttachResult = [number, number, number, number, number, number];

export interface NativeAddon {
  readonly controlSlots: number;
  readonly statsLength: number;
  readonly debugLevel: number;
  readonly genBits: number;
  /** Where stats() puts each field of its snapshot (native/binding/pool_api.cc declares the layout). */
  readonly statIndex: Readonly<Record<string, number>>;
  init(errors: object): void;
  create(
    bytes: number,
    maxOrder: number,
    min: number,
    low: number,
    high: number,
    flags: number,
    releaseOrder: number,
    control: Int32Array,
  ): AttachResult;
  attach(id: number, nonce: number, control: Int32Array): AttachResult;
  detach(slot: number): number;
  region(slot: number): ArrayBuffer;
  /** pfn * 2^genBits + gen, or a negative STATUS. */
  alloc(slot: number, order: number, allocFlags: number, task: number): number;
  free(slot: number, pfn: number, order: number, gen: number): void;
  /** Writes (pfn, gen) pairs into out, never reading it (nothing on failure); returns n or a negative STATUS. */
  allocBulk(slot: number, n: number, order: number, allocFlags: number, task: number, out: Int32Array): number;
  /** refs holds (pfn, order, gen) triples; native code copies them once and frees from the copy. */
  freeBulk(slot: number, refs: Int32Array, n: number): number;
  setOwner(slot: number, pfn: number, order: number, gen: number, task: number, expectOwner: number): void;
  meta(slot: number, pfn: number): [state: number, order: number, owner: number, gen: number];
  taskCreate(slot: number): number;
  taskReclaim(slot: number, task: number, retire: boolean): number;
  taskPages(slot: number, task: number): number;
  taskLive(slot: number, task: number): boolean;
  setWatermarks(slot: number, min: number, low: number, high: number): void;
  addReserved(slot: number, delta: number): number;
  tryReserve(slot: number, n: number, level: number): boolean;
  stats(slot: number, out: Float64Array): void;
  check(slot: number): string | null;
}

function load(): NativeAddon {
  const require = createRequire(import.meta.url);
  const build = process.env.NOFAIL_BUILD === 'Debug' ? 'Debug' : 'Release';
  const addon = require(`../../build/${build}/nofail.node`) as NativeAddon;
  addon.init(nativeErrorClasses);
  return addon;
}

export const native: NativeAddon = load();

const STAT_NAMES = [
  'totalPages', 'freePages', 'allocatedPages', 'cachedPages', 'tokenPages', 'min', 'low', 'high', 'reserved',
  'allocs', 'frees', 'pgalloc', 'pgfree', 'failWatermark', 'failFragmented', 'liveTasks', 'maxOrder',
  'threadPages', 'threadCachedPages', 'cachedTasks', 'buddyinfo', 'cachedTaskPairs',
] as const;

/**
 * Indices into the Float64Array that stats() fills, as the addon declares
 * them; a name this file expects and the addon lacks fails here, at load.
 */
export const STAT = layout('statIndex', native.statIndex, STAT_NAMES);

function layout<const N extends string>(what: string, table: Readonly<Record<string, number>>, names: readonly N[]): Readonly<Record<N, number>> {
  const out = {} as Record<N, number>;
  for (const n of names) {
    const v = table?.[n];
    if (typeof v !== 'number') throw new Error(`nofail: the addon's ${what} has no entry '${n}' (a stale build? run npm run build)`);
    out[n] = v;
  }
  return Object.freeze(out);
}
export const GEN_SCALE = 2 ** native.genBits;
