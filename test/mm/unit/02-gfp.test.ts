import { describe, expect, it } from 'vitest';
import { InvalidArgTypeError, InvalidGfpError } from '../../../src/errors.js';
import { formatGfp, GFP, GFP_KNOWN_MASK, gfpToAllocFlags, validateGfp } from '../../../src/mm/gfp.js';
import { ALLOC } from '../../../src/binding/native.js';

describe('GFP flags', () => {
  it('have the kernel bit values (include/linux/gfp_types.h)', () => {
    expect(GFP.HIGH).toBe(0x20);
    expect(GFP.IO).toBe(0x40);
    expect(GFP.FS).toBe(0x80);
    expect(GFP.ZERO).toBe(0x100);
    expect(GFP.DIRECT_RECLAIM).toBe(0x400);
    expect(GFP.KSWAPD_RECLAIM).toBe(0x800);
    expect(GFP.NOWARN).toBe(0x2000);
    expect(GFP.RETRY_MAYFAIL).toBe(0x4000);
    expect(GFP.NOFAIL).toBe(0x8000);
    expect(GFP.NORETRY).toBe(0x10000);
    expect(GFP.MEMALLOC).toBe(0x20000);
    expect(GFP.NOMEMALLOC).toBe(0x80000);
    expect(GFP.HARDWALL).toBe(0x100000);
    expect(GFP.ACCOUNT).toBe(0x400000);
    expect(GFP.RESERVE).toBe(0x8000000);
  });

  it('have the kernel composites, by value and by construction', () => {
    expect(GFP.KERNEL).toBe(0xcc0);
    expect(GFP.NOFS).toBe(0xc40);
    expect(GFP.NOIO).toBe(0xc00);
    expect(GFP.ATOMIC).toBe(0x820);
    expect(GFP.NOWAIT).toBe(0x2800);
    expect(GFP.USER).toBe(0x100cc0);
    expect(GFP.KERNEL_ACCOUNT).toBe(0x400cc0);
    expect(GFP.RECLAIM).toBe(0xc00);

    expect(GFP.KERNEL).toBe(GFP.DIRECT_RECLAIM | GFP.KSWAPD_RECLAIM | GFP.IO | GFP.FS);
    expect(GFP.NOFS).toBe(GFP.KERNEL & ~GFP.FS);
    expect(GFP.NOIO).toBe(GFP.KERNEL & ~(GFP.IO | GFP.FS));
    expect(GFP.ATOMIC).toBe(GFP.HIGH | GFP.KSWAPD_RECLAIM);
    expect(GFP.NOWAIT).toBe(GFP.KSWAPD_RECLAIM | GFP.NOWARN);
    expect(GFP.USER).toBe(GFP.KERNEL | GFP.HARDWALL);
    expect(GFP.KERNEL_ACCOUNT).toBe(GFP.KERNEL | GFP.ACCOUNT);
  });

  it('are frozen', () => {
    expect(Object.isFrozen(GFP)).toBe(true);
    expect(() => {
      (GFP as { KERNEL: number }).KERNEL = 0;
    }).toThrow(TypeError);
  });

  it('RESERVE sits above every kernel bit', () => {
    const kernelBits = GFP_KNOWN_MASK & ~GFP.RESERVE;
    expect(GFP.RESERVE > kernelBits).toBe(true);
    expect(GFP.RESERVE & kernelBits).toBe(0);
  });
});

describe('formatGfp', () => {
  it('prints composites the way %pGg does', () => {
    expect(formatGfp(GFP.KERNEL)).toBe('0xcc0(GFP_KERNEL)');
    expect(formatGfp(GFP.KERNEL | GFP.NOWARN)).toBe('0x2cc0(GFP_KERNEL|__GFP_NOWARN)');
    expect(formatGfp(GFP.NOFS)).toBe('0xc40(GFP_NOFS)');
    expect(formatGfp(GFP.NOIO)).toBe('0xc00(GFP_NOIO)');
    expect(formatGfp(GFP.ATOMIC)).toBe('0x820(GFP_ATOMIC)');
    expect(formatGfp(GFP.NOWAIT)).toBe('0x2800(GFP_NOWAIT)');
    expect(formatGfp(GFP.USER)).toBe('0x100cc0(GFP_USER)');
    expect(formatGfp(GFP.KERNEL_ACCOUNT)).toBe('0x400cc0(GFP_KERNEL_ACCOUNT)');
  });

  it('prints single flags and leftovers', () => {
    expect(formatGfp(GFP.HIGH)).toBe('0x20(__GFP_HIGH)');
    expect(formatGfp(GFP.KERNEL | GFP.ZERO)).toBe('0xdc0(GFP_KERNEL|__GFP_ZERO)');
    expect(formatGfp(GFP.KERNEL | GFP.NOFAIL | GFP.NOWARN)).toBe('0xacc0(GFP_KERNEL|__GFP_NOWARN|__GFP_NOFAIL)');
    expect(formatGfp(GFP.MEMALLOC | GFP.NOMEMALLOC)).toBe('0xa0000(__GFP_NOMEMALLOC|__GFP_MEMALLOC)');
    expect(formatGfp(GFP.KSWAPD_RECLAIM)).toBe('0x800(__GFP_KSWAPD_RECLAIM)');
    expect(formatGfp(GFP.RESERVE | GFP.KERNEL)).toBe('0x8000cc0(GFP_KERNEL|__GFP_RESERVE)');
    // Unknown bits are printed as a number, as the kernel does.
    expect(formatGfp(GFP.KERNEL | 0x1)).toBe('0xcc1(GFP_KERNEL|0x1)');
  });
});

describe('validateGfp', () => {
  it('accepts every composite and every known bit', () => {
    for (const [name, value] of Object.entries(GFP)) {
      expect(() => validateGfp(value), name).not.toThrow();
    }
    expect(() => validateGfp(GFP_KNOWN_MASK & ~GFP.NORETRY)).not.toThrow();
    expect(() => validateGfp(0)).not.toThrow();
  });

  it('rejects unknown bits with ERR_INVALID_GFP, naming them', () => {
    for (const bad of [0x1, 0x2, 0x200, 0x1000, 0x40000, 0x200000, 0x4000000, 0x80000000]) {
      let err: unknown;
      try {
        validateGfp((GFP.KERNEL | bad) >>> 0);
      } catch (e) {
        err = e;
      }
      expect(err, `0x${bad.toString(16)}`).toBeInstanceOf(InvalidGfpError);
      expect((err as InvalidGfpError).code).toBe('ERR_INVALID_GFP');
      expect((err as Error).message).toContain(`0x${bad.toString(16)}`);
    }
  });

  it('rejects NORETRY with NOFAIL', () => {
    expect(() => validateGfp(GFP.KERNEL | GFP.NORETRY | GFP.NOFAIL)).toThrowError(
      expect.objectContaining({ code: 'ERR_INVALID_GFP', message: expect.stringMatching(/NORETRY.*NOFAIL/) }),
    );
    expect(() => validateGfp(GFP.KERNEL | GFP.NORETRY)).not.toThrow();
    expect(() => validateGfp(GFP.KERNEL | GFP.NOFAIL)).not.toThrow();
  });

  it('rejects masks that are not 32-bit non-negative integers', () => {
    for (const bad of [-1, 0.5, NaN, Infinity, 2 ** 32, 2 ** 53]) {
      expect(() => validateGfp(bad), String(bad)).toThrowError(expect.objectContaining({ code: 'ERR_INVALID_GFP' }));
    }
  });

  it('rejects non-numbers with ERR_INVALID_ARG_TYPE, naming the parameter', () => {
    for (const bad of ['0xcc0', null, undefined, {}, 0xccn]) {
      let err: unknown;
      try {
        validateGfp(bad, 'mask');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InvalidArgTypeError);
      expect(err).toBeInstanceOf(TypeError);
      expect((err as InvalidArgTypeError).code).toBe('ERR_INVALID_ARG_TYPE');
      expect((err as Error).message).toMatch(/^mask /);
    }
  });
});

describe('gfpToAllocFlags (the depth each caller may go to)', () => {
  it('maps the composites like gfp_to_alloc_flags()', () => {
    expect(gfpToAllocFlags(GFP.KERNEL)).toBe(ALLOC.WMARK_MIN);
    expect(gfpToAllocFlags(GFP.NOFS)).toBe(ALLOC.WMARK_MIN);
    expect(gfpToAllocFlags(GFP.NOIO)).toBe(ALLOC.WMARK_MIN);
    expect(gfpToAllocFlags(GFP.KERNEL | GFP.HIGH)).toBe(ALLOC.MIN_RESERVE);
    expect(gfpToAllocFlags(GFP.ATOMIC)).toBe(ALLOC.MIN_RESERVE | ALLOC.NON_BLOCK);
    expect(gfpToAllocFlags(GFP.NOWAIT)).toBe(ALLOC.NON_BLOCK);
    expect(gfpToAllocFlags(GFP.HIGH)).toBe(ALLOC.MIN_RESERVE | ALLOC.NON_BLOCK);
  });

  it('gives MEMALLOC no watermarks, unless NOMEMALLOC', () => {
    expect(gfpToAllocFlags(GFP.KERNEL | GFP.MEMALLOC)).toBe(ALLOC.NO_WATERMARKS);
    expect(gfpToAllocFlags(GFP.MEMALLOC)).toBe(ALLOC.NO_WATERMARKS | ALLOC.NON_BLOCK);
    expect(gfpToAllocFlags(GFP.KERNEL | GFP.MEMALLOC | GFP.NOMEMALLOC)).toBe(ALLOC.WMARK_MIN);
    // NOMEMALLOC also takes away the non-blocking reserve of an atomic caller.
    expect(gfpToAllocFlags(GFP.NOWAIT | GFP.NOMEMALLOC)).toBe(ALLOC.WMARK_MIN);
    expect(gfpToAllocFlags(GFP.ATOMIC | GFP.NOMEMALLOC)).toBe(ALLOC.MIN_RESERVE);
  });

  it('applies reclaim context and OOM victim rights, which NOMEMALLOC beats', () => {
    expect(gfpToAllocFlags(GFP.KERNEL, { reclaimContext: true })).toBe(ALLOC.NO_WATERMARKS);
    expect(gfpToAllocFlags(GFP.KERNEL | GFP.NOMEMALLOC, { reclaimContext: true })).toBe(ALLOC.WMARK_MIN);
    expect(gfpToAllocFlags(GFP.KERNEL, { oomVictim: true })).toBe(ALLOC.OOM);
    expect(gfpToAllocFlags(GFP.KERNEL | GFP.NOMEMALLOC, { oomVictim: true })).toBe(ALLOC.WMARK_MIN);
    // No watermarks at all already covers the victim's extra depth.
    expect(gfpToAllocFlags(GFP.KERNEL | GFP.MEMALLOC, { oomVictim: true })).toBe(ALLOC.NO_WATERMARKS);
  });

  it('passes RESERVE through, and the slow path never asks for LOW or HIGH', () => {
    expect(gfpToAllocFlags(GFP.KERNEL | GFP.RESERVE)).toBe(ALLOC.RESERVE);
    expect(gfpToAllocFlags(GFP.ATOMIC | GFP.RESERVE)).toBe(ALLOC.RESERVE | ALLOC.MIN_RESERVE | ALLOC.NON_BLOCK);
    for (const mask of Object.values(GFP)) {
      if (mask & GFP.NORETRY && mask & GFP.NOFAIL) continue;
      expect(gfpToAllocFlags(mask) & 0x3).toBe(ALLOC.WMARK_MIN);
    }
  });
});
