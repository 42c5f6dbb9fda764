/**
 * A span: bytes spread over a list of order-0 pages, in order — what a
 * PoolCache value and a request body (PoolBody) are. Byte i lives in
 * pages[i >> 12] at offset i & 4095. Public API only: page.bytes.
 *
 * The copies are Buffer.prototype.copy, a memcpy per page (never a loop
 * over bytes), and the views merge pages that lie next to each other in
 * memory: a body taken in one allocBulk is usually a few runs, so a
 * response is a few iovecs rather than one per page.
 */
import { type Page, PAGE_SIZE } from '../mm/index.js';

const copy = Buffer.prototype.copy;

/** Copies `src` into the pages from byte `at` on; the pages must be there. Returns the new end. */
export function copyIntoPages(pages: readonly Page[], at: number, src: Uint8Array): number {
  const n = src.length;
  let off = 0;
  while (off < n) {
    const into = at & (PAGE_SIZE - 1);
    const len = Math.min(PAGE_SIZE - into, n - off);
    // Buffer#copy takes any Uint8Array as source (through call) and target:
    // one native memcpy, no subarray made.
    copy.call(src, pages[(at - into) / PAGE_SIZE]!.bytes, into, off, off + len);
    off += len;
    at += len;
  }
  return at;
}

/**
 * Buffers over the first `size` bytes of the pages, no copy: one per run of
 * pages adjacent in the pool whose views lie end to end (the same chunk of
 * the pool's region), the last one trimmed. Their
 * concatenation is the span.
 */
export function pageViews(pages: readonly Page[], size: number): Buffer[] {
  const out: Buffer[] = [];
  const count = Math.ceil(size / PAGE_SIZE);
  let i = 0;
  while (i < count) {
    const v = pages[i]!.bytes;
    let end = v.byteOffset + PAGE_SIZE;
    let j = i + 1;
    for (; j < count; j++) {
      const q = pages[j]!;
      if (q.pfn !== pages[j - 1]!.pfn + 1) break;
      const w = q.bytes;
      if (w.buffer !== v.buffer || w.byteOffset !== end) break;
      end += PAGE_SIZE;
    }
    out.push(Buffer.from(v.buffer, v.byteOffset, Math.min((j - i) * PAGE_SIZE, size - i * PAGE_SIZE)));
    i = j;
  }
  return out;
}
