/**
 * Page poisoning (the kernel's page_poison / PAGE_POISON = 0x6b): with
 * Pool.create({ poison: true }) every page holds 0x6b in every byte from
 * its free until its next allocation, which checks it. A byte that changed
 * means somebody wrote to the page after freeing it — a use-after-free —
 * and is reported with the page and the first changed offset. Debug only:
 * it costs a scan of every page handed out.
 *
 * Poisoning is lazy: a page is poisoned when it is freed, not when the pool
 * is created (that would touch every page, and a large pool is mapped
 * MAP_NORESERVE to be touched only where used). A page never handed out
 * reads as zeros. So each 4 KiB page of a block passes when it is all
 * poison or all zeros; pages are filled whole, so a mix inside one page
 * is a write.
 */
import { FILL } from '../../binding/native.js';
import type { Page } from '../page.js';
import type { VmStat } from '../stats/vmstat.js';
import { warn } from '../stats/warn.js';

/** The byte free pages are poisoned with (native fills a dying thread's pages with it too: one value, the layout's). */
export const POISON_BYTE = FILL.POISON;
const POISON_WORD = (POISON_BYTE * 0x01010101) >>> 0;
const PAGE_WORDS = 1024;

export function checkPoison(core: { readonly vmstat: VmStat }, page: Page): void {
  const bytes = page.bytes;
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
  for (let first = 0; first < words.length; first += PAGE_WORDS) {
    const expect = words[first] === 0 ? 0 : POISON_WORD;
    for (let i = first; i < first + PAGE_WORDS; i++) {
      if (words[i] !== expect) {
        const fill = expect === 0 ? 0 : POISON_BYTE;
        let off = i * 4;
        while (bytes[off] === fill) off++;
        core.vmstat.add('page_poison_errors');
        warn(
          'use-after-free',
          `page poison check failed: pfn ${page.pfn} order ${page.order} was written after it was freed (offset ${off}: 0x${bytes[off]!.toString(16)})`,
          { pfn: page.pfn, order: page.order, offset: off, value: bytes[off] },
        );
        return;
      }
    }
  }
}
