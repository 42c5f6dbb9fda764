/**
 * A block's bytes on their way to the caller: the poison check (a debug
 * option: the block must still hold the poison its free left there) and
 * __GFP_ZERO. Every allocation path goes through here once it has taken a
 * block — from the page cache, from the zone, from a token reservation or
 * in bulk — so what a flag does to the bytes is written once.
 */
import { checkPoison, POISON_BYTE } from './debug/poison.js';
import { GFP } from './gfp.js';
import type { Page } from './page.js';
import type { VmStat } from './stats/vmstat.js';

/** What hand-out needs of the thread's attachment. */
export interface HandOutHost {
  /** What free pages are filled with: -1 nothing, 0 (zeroOnFree) or POISON_BYTE (poison). */
  readonly fill: number;
  readonly vmstat: VmStat;
}

/** Does this mask, on this pool, make hand-out touch the bytes at all? */
export function touchesBytes(host: HandOutHost, gfp: number): boolean {
  return host.fill === POISON_BYTE || (gfp & GFP.ZERO) !== 0;
}

/** The poison check and __GFP_ZERO, for a block just taken. */
export function handOut(host: HandOutHost, page: Page, gfp: number): void {
  if (host.fill === POISON_BYTE) checkPoison(host, page);
  if (gfp & GFP.ZERO) page.bytes.fill(0);
}
