import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defaultWatermarks, resolveWatermarks } from '../../../src/mm/watermarks.js';

describe('defaultWatermarks (min_free_kbytes and __setup_per_zone_wmarks, scaled to the pool)', () => {
  // Worked by hand from the kernel's formulas: min_free_kbytes = sqrt(16 * KiB)
  // clamped to [128, 262144], min never above 1/16 of the pool,
  // gap = max(min / 4, pages * 10 / 10000).
  it.each([
    ['64 MiB', 16384, { min: 256, low: 320, high: 384 }],
    ['1 GiB (min/4 is the gap)', 262144, { min: 1024, low: 1286, high: 1548 }],
    ['4 GiB (scale factor is the gap)', 1048576, { min: 2048, low: 3096, high: 4144 }],
    ['1000 pages (capped at 1/16)', 1000, { min: 62, low: 77, high: 92 }],
    ['8 MiB', 2048, { min: 90, low: 112, high: 134 }],
    ['512 KiB (128 KiB floor, then the 1/16 cap)', 128, { min: 8, low: 10, high: 12 }],
    ['16 TiB (256 MiB ceiling)', 2 ** 32, { min: 65536, low: 4360503, high: 8655470 }],
    ['one page', 1, { min: 0, low: 0, high: 0 }],
  ])('%s', (_name, pages, expected) => {
    expect(defaultWatermarks(pages)).toEqual(expected);
  });

  it('keeps min <= low <= high <= total for every pool size', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 29 - 1 }), (pages) => {
        const { min, low, high } = defaultWatermarks(pages);
        for (const v of [min, low, high]) expect(Number.isInteger(v)).toBe(true);
        expect(0 <= min && min <= low && low <= high && high <= pages).toBe(true);
        expect(min).toBeLessThanOrEqual(Math.floor(pages / 16));
      }),
    );
  });
});

describe('resolveWatermarks', () => {
  it('returns the defaults when nothing is given', () => {
    expect(resolveWatermarks(undefined, 16384)).toEqual(defaultWatermarks(16384));
  });

  it('takes explicit pages and size strings', () => {
    expect(resolveWatermarks({ min: 400, low: 500, high: 600 }, 1000)).toEqual({ min: 400, low: 500, high: 600 });
    expect(resolveWatermarks({ min: '400KiB', low: '2MiB', high: '4MiB' }, 16384)).toEqual({
      min: 100,
      low: 512,
      high: 1024,
    });
    // Numbers are pages; a size string must be whole pages.
    expect(resolveWatermarks({ min: 4097, low: 5000, high: 6000 }, 16384)).toEqual({ min: 4097, low: 5000, high: 6000 });
    expect(resolveWatermarks({ min: '8192b', low: '12288b', high: '1MiB' }, 16384)).toEqual({ min: 2, low: 3, high: 256 });
    expect(() => resolveWatermarks({ min: '4097b' }, 16384)).toThrow(/4096 or 8192/);
    expect(resolveWatermarks({ min: 0, low: 0, high: 0 }, 1000)).toEqual({ min: 0, low: 0, high: 0 });
    expect(resolveWatermarks({ min: 1000, low: 1000, high: 1000 }, 1000)).toEqual({ min: 1000, low: 1000, high: 1000 });
  });

  it('spaces missing levels from the given ones like the kernel', () => {
    // gap = max(100 / 4, 1000 * 10 / 10000) = 25
    expect(resolveWatermarks({ min: 100 }, 1000)).toEqual({ min: 100, low: 125, high: 150 });
    expect(resolveWatermarks({ min: 100, low: 300 }, 1000)).toEqual({ min: 100, low: 300, high: 325 });
    // The missing levels never pass the pool's size.
    expect(resolveWatermarks({ min: 990 }, 1000)).toEqual({ min: 990, low: 1000, high: 1000 });
    // min from the defaults (62 for 1000 pages), gap 15
    expect(resolveWatermarks({ high: 500 }, 1000)).toEqual({ min: 62, low: 77, high: 500 });
  });

  it.each([
    ['null', null, /^watermarks /],
    ['a number', 5, /^watermarks /],
    ['a string', '1MiB', /^watermarks /],
    ['an unknown key', { min: 1, lo: 2 }, /watermarks has an unknown option 'lo'; did you mean 'low'\?/],
    ['a negative min', { min: -1 }, /watermarks\.min/],
    ['a fractional low', { min: 1, low: 2.5 }, /watermarks\.low/],
    ['an unreadable high', { high: 'lots' }, /watermarks\.high/],
    ['NaN', { min: NaN }, /watermarks\.min/],
    ['min above low', { min: 500, low: 400, high: 600 }, /<= total pages \(1000\).*min 500, low 400, high 600/],
    ['low above high', { min: 100, low: 700, high: 600 }, /min <= low <= high/],
    ['high above the pool', { min: 100, low: 200, high: 1001 }, /total pages \(1000\)/],
    ['a missing low that lands above high', { min: 100, high: 110 }, /low 125, high 110/],
  ])('rejects %s with a message naming the option', (_name, option, message) => {
    let err: unknown;
    try {
      resolveWatermarks(option, 1000);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: string }).code).toMatch(/^ERR_(OUT_OF_RANGE|INVALID_ARG_TYPE|INVALID_ARG_VALUE)$/);
    expect((err as Error).message).toMatch(message);
  });
});
