/**
 * The one module that loads the addon and describes it (STYLE habit 1).
 * Everything else talks to native code through `native` below.
 *
 * Every table C++ and TypeScript share (ALLOC, STATUS, STAT, FILL, and the
 * control block's layout in control.ts) is declared once, in C++, and
 * exported by the addon as `layout`; the constants here are built from it
 * at load, and a name this side expects that the addon lacks fails here,
 * naming the entry.
 *
 * NOFAIL_BUILD=Debug loads build/Debug (npm run build:debug), whose core
 * checks the accounting identities on every operation.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeErrorClasses } from '../errors.js';

type Table = Readonly<Record<string, number>>;

/** The addon's `layout` (native/binding/layout.cc says where each table is declared). */
export interface NativeLayout {
  /** Control-block words (native/sync/control.h). */
  readonly ctl: Table;
  /** Control-block regions: offsets and sizes (native/sync/control.h). */
  readonly regions: Table;
  /** The words of a task-table entry (native/sync/control.h). */
  readonly task: Table;
  /** ALLOC_* rights (native/core/zone.h). */
  readonly alloc: Table;
  /** Results of alloc/allocBulk (native/core/status.h). */
  readonly status: Table;
  /** Where stats() puts each field of its snapshot (native/binding/pool_api.cc). */
  readonly stat: Table;
  /** genBits, transitTask, pageShift, maxPages, maxOrderLimit, regionChunkShift; fill: create()'s fill values. */
  readonly constants: Table & { readonly fill: Table };
}

/** create()'s options: every field required (resolveCreate in src/mm/setup.ts fills in the defaults). */
export interface NativeCreateOptions {
  bytes: number;
  maxOrder: number;
  min: number;
  low: number;
  high: number;
  populate: boolean;
  mlock: boolean;
  hugepages: boolean;
  /** What native code writes over the pages it takes back from a task: one of FILL. */
  fill: number;
  /** Free blocks of at least this order are given back to the kernel; -1 never. */
  releaseOrder: number;
}

/** What create() and attach() return: this thread's slot and the pool's identity. */
export interface AttachResult {
  readonly slot: number;
  readonly id: number;
  readonly nonce: number;
  readonly nrPages: number;
  readonly maxOrder: number;
  /** This thread's own task in the pool. */
  readonly task: number;
}

export interface NativeAddon {
  readonly controlSlots: number;
  readonly statsLength: number;
  readonly debugLevel: number;
  readonly genBits: number;
  /** The same object as layout.stat. */
  readonly statIndex: Table;
  readonly layout: NativeLayout;
  init(errors: object): void;
  create(options: NativeCreateOptions, control: Int32Array): AttachResult;
  attach(id: number, nonce: number, control: Int32Array): AttachResult;
  detach(slot: number): number;
  /** An external ArrayBuffer over bytes [chunk << regionChunkShift, its end) of the region; one per chunk and thread. */
  region(slot: number, chunk: number): ArrayBuffer;
  /** pfn * 2^genBits + gen, or a negative STATUS. */
  alloc(slot: number, order: number, allocFlags: number, task: number): number;
  free(slot: number, pfn: number, order: number, gen: number): void;
  /** Writes (pfn, gen) pairs into out, never reading it (nothing on failure); returns n or a negative STATUS. */
  allocBulk(slot: number, n: number, order: number, allocFlags: number, task: number, out: Int32Array): number;
  /** refs holds (pfn, order, gen) triples; native code copies them once and frees from the copy. */
  freeBulk(slot: number, refs: Int32Array, n: number): number;
  setOwner(slot: number, pfn: number, order: number, gen: number, task: number, expectOwner: number): void;
  /** setOwner for n (pfn, order, gen) triples, in order; throws at a bad one, with `moved` on the error. */
  setOwnerBulk(slot: number, refs: Int32Array, n: number, task: number, expectOwner: number): number;
  meta(slot: number, pfn: number): [state: number, order: number, owner: number, gen: number];
  taskCreate(slot: number): number;
  taskReclaim(slot: number, task: number, retire: boolean): number;
  taskPages(slot: number, task: number): number;
  taskLive(slot: number, task: number): boolean;
  setWatermarks(slot: number, min: number, low: number, high: number): void;
  addReserved(slot: number, delta: number): number;
  tryReserve(slot: number, n: number, level: number): boolean;
  /**
   * The mark a caller with these ALLOC_* rights must leave free pages at or
   * above after taking `need` pages: the zone gives them iff
   * `free - need >= effectiveMark` (native/core/zone.cc, the one formula).
   */
  effectiveMark(slot: number, level: number, allocFlags: number): number;
  stats(slot: number, out: Float64Array): void;
  check(slot: number): string | null;
}

/**
 * Finds the addon. node-gyp-build looks, in order, in build/Release,
 * build/Debug (a build from source: npm install compiles one where no
 * prebuild fits) and prebuilds/<platform>-<arch>/ (shipped in the package:
 * no compiler needed). NOFAIL_BUILD=Debug loads build/Debug only: the build
 * whose core checks every accounting identity on every operation.
 */
function load(): NativeAddon {
  const require = createRequire(import.meta.url);
  const root = fileURLToPath(new URL('../..', import.meta.url));
  let addon: NativeAddon;
  try {
    addon = (
      process.env.NOFAIL_BUILD === 'Debug'
        ? require(join(root, 'build', 'Debug', 'nofail.node'))
        : (require('node-gyp-build') as (dir: string) => unknown)(root)
    ) as NativeAddon;
  } catch (e) {
    throw missingAddon(root, e);
  }
  addon.init(nativeErrorClasses);
  return addon;
}

/** What to do when no addon loads: where it looked, for which platform, and the commands that fix it. */
function missingAddon(root: string, cause: unknown): Error {
  // As node-gyp-build decides it.
  const libc = process.env.LIBC ?? (existsSync('/etc/alpine-release') ? 'musl' : 'glibc');
  const where = process.env.NOFAIL_BUILD === 'Debug' ? [join(root, 'build', 'Debug')] : [join(root, 'build', 'Release'), join(root, 'build', 'Debug'), join(root, 'prebuilds', `${process.platform}-${process.arch}`)];
  const err = new Error(
    `nofail: no native addon for ${process.platform}-${process.arch} (${libc}, Node ${process.version}, Node-API ${process.versions.napi}).\n` +
      `Looked in:\n${where.map((w) => `  ${w}`).join('\n')}\n` +
      'The package ships a prebuilt addon for linux-x64 (glibc); anywhere else it is compiled at install, which needs a C++20 compiler, python3 and make.\n' +
      'To build it now: npm rebuild nofail   (or, if install scripts were skipped: cd node_modules/nofail && npx node-gyp rebuild)\n' +
      (process.env.NOFAIL_BUILD === 'Debug' ? 'NOFAIL_BUILD=Debug needs the debug build: npm run build:debug\n' : '') +
      `Cause: ${cause instanceof Error ? cause.message.split('\n')[0] : String(cause)}`,
    { cause },
  );
  (err as Error & { code: string }).code = 'ERR_NOFAIL_ADDON_MISSING';
  return err;
}

export const native: NativeAddon = load();

/**
 * The entries `names` of one of the addon's layout tables, as a frozen
 * object (built with Object.fromEntries, so it keeps fast properties); a
 * name this side expects that the addon lacks, or that is not a number,
 * fails here, at load, naming the entry.
 */
export function layoutTable<const N extends string>(what: string, table: Table | undefined, names: readonly N[]): Readonly<Record<N, number>> {
  const entries = names.map((n): [N, number] => {
    const v = table?.[n];
    if (typeof v !== 'number') throw new Error(`nofail: the addon's layout.${what} has no entry '${n}' (a stale build? run npm run build)`);
    return [n, v];
  });
  return Object.freeze(Object.fromEntries(entries) as Record<N, number>);
}

/** ALLOC_* rights (native/core/zone.h). */
export const ALLOC = layoutTable('alloc', native.layout?.alloc, [
  'WMARK_MIN', 'WMARK_LOW', 'WMARK_HIGH', 'NO_WATERMARKS', 'OOM', 'NON_BLOCK', 'MIN_RESERVE', 'RESERVE',
] as const);

/** Negative results of alloc/allocBulk (native/core/status.h). */
export const STATUS = layoutTable('status', native.layout?.status, ['NOMEM_WATERMARK', 'NOMEM_FRAGMENTED'] as const);

/** Indices into the Float64Array that stats() fills. */
export const STAT = layoutTable('stat', native.layout?.stat, [
  'totalPages', 'freePages', 'allocatedPages', 'cachedPages', 'tokenPages', 'min', 'low', 'high', 'reserved',
  'allocs', 'frees', 'pgalloc', 'pgfree', 'failWatermark', 'failFragmented', 'liveTasks', 'maxOrder',
  'threadPages', 'threadCachedPages', 'cachedTasks', 'buddyinfo', 'cachedTaskPairs',
] as const);

const CONSTANTS = layoutTable('constants', native.layout?.constants, [
  'genBits',
  'transitTask',
  'pageShift',
  'maxPages',
  'maxOrderLimit',
  'regionChunkShift',
] as const);

/** create()'s `fill`: what native code writes over the pages it takes back from a task (none, zeros, poison). */
export const FILL = layoutTable('constants.fill', native.layout?.constants?.fill, ['NONE', 'ZERO', 'POISON'] as const);

/** The task that owns a page between transfer() and adopt() (native/sync/pool.h). */
export const TRANSIT_TASK = CONSTANTS.transitTask;
/** log2 of the page size (native/core/page_meta.h kPageShift). */
export const PAGE_SHIFT = CONSTANTS.pageShift;
/** alloc() returns pfn * GEN_SCALE + gen. */
export const GEN_SCALE = 2 ** CONSTANTS.genBits;
/** The most pages a pool may have, and the largest maxOrder (native/core/page_meta.h). */
export const MAX_PAGES = CONSTANTS.maxPages;
export const MAX_ORDER_LIMIT = CONSTANTS.maxOrderLimit;
/**
 * JavaScript sees the region through one ArrayBuffer per 2^(this - 12)
 * pages (native/core/page_meta.h kRegionChunkShift): a block never crosses
 * one, and every offset in one is an int32.
 */
export const CHUNK_PAGE_SHIFT = CONSTANTS.regionChunkShift - CONSTANTS.pageShift;
