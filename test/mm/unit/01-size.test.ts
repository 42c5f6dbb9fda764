import { describe, expect, it } from 'vitest';
import { parseSize } from '../../../src/mm/size.js';

describe('parseSize', () => {
  it('reads bytes and binary units', () => {
    expect(parseSize(4096, 'size')).toBe(4096);
    expect(parseSize('64MiB', 'size')).toBe(64 * 1024 * 1024);
    expect(parseSize('4k', 'size')).toBe(4096);
    expect(parseSize('1 GiB', 'size')).toBe(1024 ** 3);
  });
  it('rejects what it cannot read, naming the option', () => {
    expect(() => parseSize('lots', 'size')).toThrow(/size/);
    expect(() => parseSize(-1, 'size')).toThrowError(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => parseSize({}, 'size')).toThrowError(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });
});
