import { describe, expect, it } from 'vitest';
import { parsePageSize, parsePages, parseSize } from '../../../src/mm/size.js';

describe('parseSize: one rule, binary units', () => {
  it('reads bytes, IEC units and their one-letter forms as powers of 1024', () => {
    expect(parseSize(4096, 'size')).toBe(4096);
    expect(parseSize('64MiB', 'size')).toBe(64 * 1024 * 1024);
    expect(parseSize('4k', 'size')).toBe(4096);
    expect(parseSize('1 GiB', 'size')).toBe(1024 ** 3);
    expect(parseSize('2t', 'size')).toBe(2 * 1024 ** 4);
  });

  it('refuses decimal units, saying what they mean and what to write', () => {
    for (const [value, iec] of [
      ['1GB', "'1GiB'"],
      ['64MB', "'64MiB'"],
      ['4kB', "'4KiB'"],
      ['2TB', "'2TiB'"],
    ] as const) {
      expect(() => parseSize(value, 'size')).toThrowError(
        expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', message: expect.stringMatching(new RegExp(`decimal unit.*refuses.*${iec}`)) }),
      );
    }
  });

  it('rejects what it cannot read, naming the option', () => {
    expect(() => parseSize('lots', 'size')).toThrow(/size/);
    expect(() => parseSize(-1, 'size')).toThrowError(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => parseSize({}, 'size')).toThrowError(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });
});

describe('sizes that must be whole pages', () => {
  it('are pages, or refused with the nearest valid sizes', () => {
    expect(parsePageSize('64MiB', 'size')).toBe(16384);
    expect(parsePageSize(8192, 'size')).toBe(2);
    expect(() => parsePageSize(1000, 'size')).toThrowError(
      expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', message: expect.stringContaining('nearest valid sizes are 4096') }),
    );
    expect(() => parsePageSize('5000', 'size')).toThrowError(expect.objectContaining({ message: expect.stringContaining('4096 or 8192') }));
    // A page count stays a page count; a size string must be whole pages.
    expect(parsePages(3, 'watermarks.min')).toBe(3);
    expect(() => parsePages('1000', 'watermarks.min')).toThrow(/whole number of 4096-byte pages/);
  });
});
