/**
 * Watermarks: the kernel's defaults (mm/page_alloc.c, calculate_min_free_kbytes
 * and __setup_per_zone_wmarks) scaled to a pool, or explicit values.
 *
 *   min_free_kbytes = sqrt(16 * pool KiB), clamped to [128 KiB, 256 MiB]
 *   min  = min_free_kbytes in pages, never more than 1/16 of the pool
 *   gap  = max(min / 4, pages * watermark_scale_factor / 10000), scale 10
 *   low  = min + gap, high = low + gap
 */
import { InvalidArgTypeError, OutOfRangeError } from '../errors.js';
import { validateOptions } from '../validators.js';
import { PAGE_SIZE, parsePages } from './size.js';

export interface Watermarks {
  min: number;
  low: number;
  high: number;
}

export const WATERMARK_SCALE_FACTOR = 10;

export function defaultWatermarks(totalPages: number): Watermarks {
  const kib = (totalPages * PAGE_SIZE) / 1024;
  const minFreeKib = Math.min(Math.max(Math.floor(Math.sqrt(kib * 16)), 128), 262144);
  const min = Math.min(Math.floor((minFreeKib * 1024) / PAGE_SIZE), Math.floor(totalPages / 16));
  const gap = Math.max(Math.floor(min / 4), Math.floor((totalPages * WATERMARK_SCALE_FACTOR) / 10000));
  const low = Math.min(min + gap, totalPages);
  return { min, low, high: Math.min(low + gap, totalPages) };
}

/**
 * Explicit watermarks, each in pages or a size string. A partial object
 * fills the missing levels from the given ones the way the kernel spaces
 * them (low = min + gap, high = low + gap).
 */
export function resolveWatermarks(option: unknown, totalPages: number): Watermarks {
  const defaults = defaultWatermarks(totalPages);
  if (option === undefined) return defaults;
  if (option === null || typeof option !== 'object') {
    throw new InvalidArgTypeError('watermarks must be an object { min, low, high } of pages or size strings');
  }
  validateOptions(option, 'watermarks', ['min', 'low', 'high']);
  const o = option as Record<string, unknown>;
  const min = o.min === undefined ? defaults.min : parsePages(o.min, 'watermarks.min');
  const gap = Math.max(Math.floor(min / 4), Math.floor((totalPages * WATERMARK_SCALE_FACTOR) / 10000));
  const low = o.low === undefined ? Math.min(min + gap, totalPages) : parsePages(o.low, 'watermarks.low');
  const high = o.high === undefined ? Math.min(low + gap, totalPages) : parsePages(o.high, 'watermarks.high');
  if (!(min <= low && low <= high && high <= totalPages)) {
    throw new OutOfRangeError(
      `watermarks must satisfy min <= low <= high <= total pages (${totalPages}); got min ${min}, low ${low}, high ${high}`,
    );
  }
  return { min, low, high };
}
