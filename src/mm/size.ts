/** Parsing of sizes given as bytes or strings like '64MiB', '4k', '1 GiB': one rule, binary units (UNITS). */
import { InvalidArgTypeError, OutOfRangeError } from '../errors.js';
import { PAGE_SHIFT as PAGE_SHIFT_NATIVE } from '../binding/native.js';

/** The page size is the addon's (native/core/page_meta.h kPageShift): declared once. */
export const PAGE_SHIFT = PAGE_SHIFT_NATIVE;
export const PAGE_SIZE = 1 << PAGE_SHIFT;

/**
 * The one rule for sizes: units are binary. IEC units (KiB, MiB, GiB, TiB)
 * and their one-letter short forms (k, m, g, t, as dd and ulimit read them)
 * are powers of 1024. Decimal units (kB, KB, MB, GB, TB) are refused rather
 * than read as binary: '1GB' means 10^9 bytes to most readers, and a pool
 * quietly 7 % larger than asked for is a mistake nobody sees.
 */
const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tib: 1024 ** 4,
};
const DECIMAL: Record<string, string> = { kb: 'KiB', mb: 'MiB', gb: 'GiB', tb: 'TiB' };

/** Bytes from a number or a size string (see UNITS for the rule). */
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
  const suffix = m ? m[2]!.toLowerCase() : '';
  const iec = DECIMAL[suffix];
  if (m && iec !== undefined) {
    throw new OutOfRangeError(
      `${name}: '${value}' uses a decimal unit (${m[2]} = 10^${3 * (Object.keys(DECIMAL).indexOf(suffix) + 1)} bytes), ` +
        `which nofail refuses: sizes are binary. Write '${m[1]}${iec}' (${m[1]} x 2^${10 * (Object.keys(DECIMAL).indexOf(suffix) + 1)} bytes), or a number of bytes`,
    );
  }
  const unit = m ? UNITS[suffix] : undefined;
  if (!m || unit === undefined) {
    throw new OutOfRangeError(`${name}: cannot parse size '${value}' (examples: 4096, '64MiB', '1GiB')`);
  }
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(Math.round(bytes))) throw new OutOfRangeError(`${name}: size '${value}' is too large`);
  return Math.round(bytes);
}

/**
 * A size that must be a whole number of pages (a pool, a watermark given
 * as a size): in pages. Anything else is refused, naming the nearest valid
 * sizes, rather than rounded where nobody sees it.
 */
export function parsePageSize(value: unknown, name: string): number {
  const bytes = parseSize(value, name);
  if (bytes % PAGE_SIZE !== 0) {
    const below = bytes - (bytes % PAGE_SIZE);
    const near = below === 0 ? `${PAGE_SIZE}` : `${below} or ${below + PAGE_SIZE}`;
    throw new OutOfRangeError(
      `${name}: ${typeof value === 'string' ? `'${value}' (${bytes} bytes)` : `${bytes} bytes`} is not a whole number of ` +
        `${PAGE_SIZE}-byte pages; the nearest valid sizes are ${near}`,
    );
  }
  return bytes / PAGE_SIZE;
}

/** Pages from a page count (number) or a size string (a whole number of pages). */
export function parsePages(value: unknown, name: string): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new OutOfRangeError(`${name} must be a non-negative integer number of pages; received ${value}`);
    }
    return value;
  }
  return parsePageSize(value, name);
}
