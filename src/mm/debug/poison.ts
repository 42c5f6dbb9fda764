/**
 * Page poisoning (the kernel's page_poison / PAGE_POISON = 0x6b): with
 * Pool.create({ poison: true }) every free page holds 0x6b in every byte,
 * and each allocation checks it. A byte that changed means somebody wrote
 * to the page after freeing it — a use-after-free — and is reported with
 * the page and the first changed offset. Debug only: it costs a scan of
 * every page handed out.
 */
import type { Page } from '../page.js';
import type { VmStat } from '../stats/vmstat.js';
import { warn } from '../stats/warn.js';

export const POISON_BYTE = 0x6b;
const POISON_WORD = 0x6b6b6b6b;

export function checkPoison(core: { readonly vmstat: VmStat }, page: Page): void {
  const bytes = page.bytes;
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
  for (let i = 0; i < words.length; i++) {
    if (words[i] !== POISON_WORD) {
      let off = i * 4;
      while (bytes[off] === POISON_BYTE) off++;
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
