/**
 * Shrinkers: caches that give pages back under pressure (mm/shrinker.c).
 * A shrinker says how much it could free (count) and frees on request
 * (scan); how much to ask for is the kernel's do_shrink_slab() arithmetic:
 *
 *   delta      = (freeable >> priority) * 4 / seeks      (freeable / 2 when seeks is 0)
 *   total_scan = min((nr_deferred >> priority) + delta, 2 * freeable)
 *   scan in batches while total_scan >= batch or total_scan >= freeable
 *   nr_deferred = min(max(nr_deferred + delta - scanned, 0), 2 * freeable)
 *
 * Priority falls from 12 (a gentle 1/4096 of the cache) to 0 (all of it)
 * as reclaim gets desperate. Work a context cannot do — a shrinker that
 * needs FS under GFP_NOFS, or one that answers SHRINK_STOP — is deferred:
 * carried in nr_deferred into the next call from a capable context.
 */
import { InvalidArgTypeError, OutOfRangeError } from '../../errors.js';
import { GFP } from '../gfp.js';

/** scan(): cannot make progress in this context (e.g. would deadlock). */
export const SHRINK_STOP = -1;
/** count(): the cache is empty (not merely unknown). */
export const SHRINK_EMPTY = -2;
export const DEFAULT_SEEKS = 2;
export const SHRINK_BATCH = 128;
export const DEF_PRIORITY = 12;

export interface ShrinkControl {
  /** The mask of the allocation that reclaims. */
  readonly gfp: number;
  /** How many objects this call should scan. */
  readonly nrToScan: number;
  /** 12 (gentle) .. 0 (desperate). */
  readonly priority: number;
  /** True when kswapd, not an allocating thread, asks. */
  readonly kswapd: boolean;
}

export interface Shrinker {
  readonly name: string;
  /** What reclaim must be allowed to do for this shrinker to run: enter the filesystem, start I/O, or nothing. */
  readonly needs: 'fs' | 'io' | 'none';
  /** Freeable objects (pages) now; 0 for none or unknown, SHRINK_EMPTY for none at all. */
  count(): number;
  /** Free up to `nrToScan` objects; return how many pages went back to the pool, or SHRINK_STOP. */
  scan(nrToScan: number, ctx: ShrinkControl): number;
  /** Cost of recreating an object relative to the default 2; 0 = "free half each time". */
  readonly seeks?: number;
  /** Objects per scan call; default 128. */
  readonly batch?: number;
}

/** A registered shrinker with its deferred work. */
export class ShrinkerEntry {
  readonly shrinker: Shrinker;
  readonly seeks: number;
  readonly batch: number;
  nrDeferred = 0;
  constructor(s: Shrinker) {
    if (s === null || typeof s !== 'object') throw new InvalidArgTypeError('shrinker must be an object');
    if (typeof s.name !== 'string' || s.name === '') throw new InvalidArgTypeError('shrinker.name must be a non-empty string');
    if (s.needs !== 'fs' && s.needs !== 'io' && s.needs !== 'none') {
      throw new OutOfRangeError(`shrinker.needs must be 'fs', 'io' or 'none'; received ${String(s.needs)}`);
    }
    if (typeof s.count !== 'function' || typeof s.scan !== 'function') {
      throw new InvalidArgTypeError('shrinker.count and shrinker.scan must be functions');
    }
    const seeks = s.seeks ?? DEFAULT_SEEKS;
    const batch = s.batch ?? SHRINK_BATCH;
    if (!Number.isInteger(seeks) || seeks < 0 || seeks > 1000) throw new OutOfRangeError('shrinker.seeks must be an integer from 0 to 1000');
    if (!Number.isInteger(batch) || batch < 1 || batch > 1 << 20) throw new OutOfRangeError('shrinker.batch must be an integer from 1 to 2^20');
    this.shrinker = s;
    this.seeks = seeks;
    this.batch = batch;
  }

  /** May reclaim with this mask call this shrinker at all? */
  allowedBy(gfp: number): boolean {
    const needs = this.shrinker.needs;
    return needs === 'none' || (needs === 'io' && (gfp & GFP.IO) !== 0) || (needs === 'fs' && (gfp & GFP.FS) !== 0);
  }
}

export interface ShrinkResult {
  freed: number;
  scanned: number;
  /** Work this call could not do and carried to a later call. */
  deferred: number;
}

/** do_shrink_slab() for one shrinker. Exceptions from the shrinker count as SHRINK_STOP and are reported via onError. */
export function doShrinkSlab(
  e: ShrinkerEntry,
  gfp: number,
  priority: number,
  kswapd: boolean,
  onError: (err: unknown, e: ShrinkerEntry) => void,
): ShrinkResult {
  let freeable: number;
  try {
    freeable = e.shrinker.count();
  } catch (err) {
    onError(err, e);
    return { freed: 0, scanned: 0, deferred: 0 };
  }
  if (!(freeable > 0)) return { freed: 0, scanned: 0, deferred: 0 };
  const nr = e.nrDeferred;
  e.nrDeferred = 0;
  const delta = e.seeks > 0 ? Math.floor((Math.floor(freeable / 2 ** priority) * 4) / e.seeks) : Math.floor(freeable / 2);
  let totalScan = Math.min(Math.floor(nr / 2 ** priority) + delta, 2 * freeable);
  let freed = 0;
  let scanned = 0;
  if (e.allowedBy(gfp)) {
    while (totalScan >= e.batch || totalScan >= freeable) {
      const nrToScan = Math.min(e.batch, totalScan);
      let ret: number;
      try {
        ret = e.shrinker.scan(nrToScan, { gfp, nrToScan, priority, kswapd });
      } catch (err) {
        onError(err, e);
        ret = SHRINK_STOP;
      }
      if (ret === SHRINK_STOP || !Number.isFinite(ret)) break;
      freed += Math.max(0, ret);
      totalScan -= nrToScan;
      scanned += nrToScan;
    }
  }
  const next = Math.min(Math.max(nr + delta - scanned, 0), 2 * freeable);
  e.nrDeferred += next;
  return { freed, scanned, deferred: Math.max(0, next - nr) };
}
