/**
 * A span: bytes spread over a list of order-0 pages, in order — what a
 * PoolCache value and a request body (PoolBody) are. Byte i lives in
 * pages[i >> 12] at offset i & 4095. Public API only: page.bytes.
 */
import { type Page, PAGE_SIZE } from '../mm/index.js';

/** Copies `src` into the pages from byte `at` on; the pages must be there. Returns the new end. */
export function copyIntoPages(pages: readonly Page[], at: number, src: Uint8Array): number {
  let off = 0;
  while (off < src.length) {
    const into = at % PAGE_SIZE;
    const n = Math.min(PAGE_SIZE - into, src.length - off);
    pages[Math.floor(at / PAGE_SIZE)]!.bytes.set(src.subarray(off, off + n), into);
    off += n;
    at += n;
  }
  return at;
}

/** Buffers over the first `size` bytes of the pages (the last one trimmed), no copy. */
export function pageViews(pages: readonly Page[], size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i * PAGE_SIZE < size; i++) {
    const v = pages[i]!.bytes;
    out.push(Buffer.from(v.buffer, v.byteOffset, Math.min(PAGE_SIZE, size - i * PAGE_SIZE)));
  }
  return out;
}
