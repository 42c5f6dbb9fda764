/**
 * GFP flags: the kernel's names and bit values (include/linux/gfp_types.h),
 * so that code and knowledge carry over. Each flag's contract is written
 * next to it: what the allocator does, and what the caller must handle.
 */
import { InvalidArgTypeError, InvalidGfpError } from '../errors.js';
import { ALLOC } from '../binding/native.js';

/** The single bits (___GFP_* in gfp_types.h). */
const BITS = {
  /** High priority: may take half of the min reserve. Callers that must not wait (IRQ-like). */
  HIGH: 0x20,
  /** May start I/O: reclaim may write dirty page-cache pages back. */
  IO: 0x40,
  /** May call into the filesystem: shrinkers that need FS may run. Clear it while holding FS locks. */
  FS: 0x80,
  /** The page's bytes are zeroed before it is returned. */
  ZERO: 0x100,
  /** May sleep and reclaim on the allocating thread. Without it an allocation never waits. */
  DIRECT_RECLAIM: 0x400,
  /** Wakes kswapd when free memory falls below low. */
  KSWAPD_RECLAIM: 0x800,
  /** No "page allocation failure" warning: the caller handles failure itself. */
  NOWARN: 0x2000,
  /** Retries hard, even for costly orders, while reclaim makes progress; never OOM-kills; may fail. */
  RETRY_MAYFAIL: 0x4000,
  /** Never fails: retries forever, with last-resort reserve access. Order > 1 is warned about. */
  NOFAIL: 0x8000,
  /** One light reclaim pass, no OOM killer: fails early. Cannot be combined with NOFAIL. */
  NORETRY: 0x10000,
  /** Ignores watermarks entirely: only for code that frees memory, with bounded use. */
  MEMALLOC: 0x20000,
  /** Never uses the emergency reserves; beats MEMALLOC and reclaim context. */
  NOMEMALLOC: 0x80000,
  /** cpuset hardwall in the kernel; accepted for GFP_USER, no effect in a single pool. */
  HARDWALL: 0x100000,
  /** Charge to the caller's accounting group; accepted, accounted as the task's pages. */
  ACCOUNT: 0x400000,
  /** nofail's own: inside a reservation's scope, may use the reserved pages (DESIGN §3). */
  RESERVE: 0x8000000,

} as const;

// Composites, built from the bits the way gfp_types.h writes them.
const RECLAIM = BITS.DIRECT_RECLAIM | BITS.KSWAPD_RECLAIM;
const KERNEL = RECLAIM | BITS.IO | BITS.FS;

export const GFP = Object.freeze({
  ...BITS,
  /** __GFP_RECLAIM: DIRECT_RECLAIM | KSWAPD_RECLAIM */
  RECLAIM,
  /** Normal context: may sleep, reclaim, do I/O and enter the filesystem (RECLAIM | IO | FS, 0xcc0). */
  KERNEL,
  /** KERNEL without FS: inside filesystem transactions (RECLAIM | IO). */
  NOFS: RECLAIM | BITS.IO,
  /** KERNEL without IO and FS: inside the I/O path. Only clean pages can be reclaimed (RECLAIM). */
  NOIO: RECLAIM,
  /** Cannot sleep; gets 62.5 % of the min reserve (HIGH | KSWAPD_RECLAIM). */
  ATOMIC: BITS.HIGH | BITS.KSWAPD_RECLAIM,
  /** Cannot sleep; no reserve access, no warning (KSWAPD_RECLAIM | NOWARN). */
  NOWAIT: BITS.KSWAPD_RECLAIM | BITS.NOWARN,
  /** KERNEL | HARDWALL */
  USER: KERNEL | BITS.HARDWALL,
  /** KERNEL | ACCOUNT */
  KERNEL_ACCOUNT: KERNEL | BITS.ACCOUNT,
});

export type GfpMask = number;

/** Every bit nofail knows; any other bit is rejected. */
export const GFP_KNOWN_MASK = Object.values(BITS).reduce((mask, bit) => mask | bit, 0);

/**
 * The masks the inline fast path takes as they are: known to be valid, and
 * nothing in them changes what happens to the bytes (no ZERO) or who may dig
 * into the reserves beyond LOW (the fast path stays above LOW anyway).
 */
export function isPlainMask(gfp: number): boolean {
  return gfp === KERNEL || gfp === NOFS || gfp === NOIO || gfp === ATOMIC || gfp === NOWAIT;
}
// Module constants rather than GFP's properties: isPlainMask is on the alloc
// fast path, whose bytecode must stay small enough for V8 to inline it.
const { NOFS, NOIO, ATOMIC, NOWAIT } = GFP;

/** Orders above this are "costly" (PAGE_ALLOC_COSTLY_ORDER). */
export const COSTLY_ORDER = 3;

// Names in the order of the kernel's __def_gfpflag_names (composites first),
// so format() prints what %pGg prints.
const NAMES: ReadonlyArray<readonly [number, string]> = [
  [GFP.USER, 'GFP_USER'],
  [GFP.KERNEL_ACCOUNT, 'GFP_KERNEL_ACCOUNT'],
  [GFP.KERNEL, 'GFP_KERNEL'],
  [GFP.NOFS, 'GFP_NOFS'],
  [GFP.ATOMIC, 'GFP_ATOMIC'],
  [GFP.NOIO, 'GFP_NOIO'],
  [GFP.NOWAIT, 'GFP_NOWAIT'],
  [GFP.HIGH, '__GFP_HIGH'],
  [GFP.IO, '__GFP_IO'],
  [GFP.FS, '__GFP_FS'],
  [GFP.NOWARN, '__GFP_NOWARN'],
  [GFP.RETRY_MAYFAIL, '__GFP_RETRY_MAYFAIL'],
  [GFP.NOFAIL, '__GFP_NOFAIL'],
  [GFP.NORETRY, '__GFP_NORETRY'],
  [GFP.ZERO, '__GFP_ZERO'],
  [GFP.NOMEMALLOC, '__GFP_NOMEMALLOC'],
  [GFP.MEMALLOC, '__GFP_MEMALLOC'],
  [GFP.HARDWALL, '__GFP_HARDWALL'],
  [GFP.ACCOUNT, '__GFP_ACCOUNT'],
  [GFP.RECLAIM, '__GFP_RECLAIM'],
  [GFP.DIRECT_RECLAIM, '__GFP_DIRECT_RECLAIM'],
  [GFP.KSWAPD_RECLAIM, '__GFP_KSWAPD_RECLAIM'],
  [GFP.RESERVE, '__GFP_RESERVE'],
];

/** `0xcc0(GFP_KERNEL)`, `0x2cc0(GFP_KERNEL|__GFP_NOWARN)`: the kernel's %pGg. */
export function formatGfp(mask: GfpMask): string {
  let rest = mask >>> 0;
  const parts: string[] = [];
  for (const [bits, name] of NAMES) {
    if (bits !== 0 && (rest & bits) === bits) {
      parts.push(name);
      rest &= ~bits;
    }
  }
  if (rest !== 0) parts.push(`0x${rest.toString(16)}`);
  return `0x${(mask >>> 0).toString(16)}(${parts.join('|')})`;
}

/** warn_alloc()'s text for a failed allocation: `page allocation failure: order:N, mode:0x…(…)`. */
export function allocFailureText(gfp: GfpMask, order: number): string {
  return `page allocation failure: order:${order}, mode:${formatGfp(gfp)}`;
}

/**
 * Rejects what the kernel rejects: a non-integer mask, unknown bits, and
 * NORETRY with NOFAIL (one says "fail early", the other "never fail").
 */
export function validateGfp(mask: unknown, name = 'gfp'): asserts mask is GfpMask {
  if (typeof mask !== 'number') {
    throw new InvalidArgTypeError(`${name} must be a GFP mask (number); received ${typeof mask}`);
  }
  if (!Number.isInteger(mask) || mask < 0 || mask > 0xffffffff) {
    throw new InvalidGfpError(`${name} must be a non-negative 32-bit integer mask; received ${mask}`);
  }
  const unknown = (mask & ~GFP_KNOWN_MASK) >>> 0;
  if (unknown !== 0) {
    throw new InvalidGfpError(`${name} has unknown bits 0x${unknown.toString(16)}: ${formatGfp(mask)}`);
  }
  if ((mask & GFP.NORETRY) !== 0 && (mask & GFP.NOFAIL) !== 0) {
    throw new InvalidGfpError(`${name} combines __GFP_NORETRY with __GFP_NOFAIL: ${formatGfp(mask)}`);
  }
}

/**
 * The watermark rights of a caller in the slow path: gfp_to_alloc_flags()
 * and __gfp_pfmemalloc_flags() of mm/page_alloc.c (6.3+). The result starts
 * at the MIN watermark; the fast path uses LOW and no rights at all.
 *   HIGH                          -> MIN_RESERVE (may take half of min)
 *   cannot block, not NOMEMALLOC  -> NON_BLOCK (with MIN_RESERVE: a further quarter)
 *   MEMALLOC or reclaim context   -> NO_WATERMARKS, unless NOMEMALLOC
 *   OOM victim                    -> OOM (a further half), unless NOMEMALLOC
 *   RESERVE                       -> may use watermark reservations
 */
export function gfpToAllocFlags(mask: GfpMask, ctx: { reclaimContext?: boolean; oomVictim?: boolean } = {}): number {
  let flags: number = ALLOC.WMARK_MIN;
  if (mask & GFP.HIGH) flags |= ALLOC.MIN_RESERVE;
  if (!(mask & GFP.DIRECT_RECLAIM) && !(mask & GFP.NOMEMALLOC)) flags |= ALLOC.NON_BLOCK;
  if (mask & GFP.RESERVE) flags |= ALLOC.RESERVE;
  if (!(mask & GFP.NOMEMALLOC)) {
    if (mask & GFP.MEMALLOC || ctx.reclaimContext) flags |= ALLOC.NO_WATERMARKS;
    else if (ctx.oomVictim) flags |= ALLOC.OOM;
  }
  return flags;
}
