/** Parsing of sizes given as bytes or strings like '64MiB', '4k', '1 GiB'. */
import { InvalidArgTypeError, OutOfRangeError } from '../errors.js';
import { PAGE_SHIFT as PAGE_SHIFT_NATIVE } from '../binding/native.js';

/** The page size is the addon's (native/core/page_meta.h kPageShift): declared once. */
export const PAGE_SHIFT = PAGE_SHIFT_NATIVE;
export const PAGE_SIZE = 1 << PAGE_SHIFT;

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/**
 * Bytes from a number or a size string. Units are binary (k = KiB): a page
 * pool has no use for powers of ten.
 */
export function parseSize(value: unknown, name: string): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new OutOfRangeError(`${name} must be a non-negative integer number of bytes; received ${value}`);
    }
    return value;
  }
  if (typeof value !== 'string') {
    throw new InvalidArgTypeError(`${name} must be a number of bytes or a size string like '64MiB'; received ${typeof value}`);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new OutOfRangeError(`${name}: cannot parse size '${value}' (examples: 4096, '64MiB', '1GiB')`);
  }
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(Math.round(bytes))) throw new OutOfRangeError(`${name}: size '${value}' is too large`);
  return Math.round(bytes);
}

/** Pages from a page count (number) or a size string (rounded up to whole pages). */
export function parsePages(value: unknown, name: string): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new OutOfRangeError(`${name} must be a non-negative integer number of pages; received ${value}`);
    }
    return value;
  }
  return Math.ceil(parseSize(value, name) / PAGE_SIZE);
}
