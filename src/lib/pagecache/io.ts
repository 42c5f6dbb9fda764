/**
 * The page cache's file I/O beyond single reads: write-back in clusters of
 * at most WRITE_CLUSTER blocks, one writev() each, finished buffer by buffer
 * when the kernel writes less.
 */
import { writeSync, writevSync } from 'node:fs';

/** Most blocks one writev() carries (IOV_MAX is 1024 on Linux). */
export const WRITE_CLUSTER = 256;

/** writev() that finishes a short write buffer by buffer. */
export function writeFully(fd: number, bufs: Uint8Array[], pos: number): void {
  let done = writevSync(fd, bufs, pos);
  for (const b of bufs) {
    let off = Math.min(done, b.length);
    done -= off;
    while (off < b.length) off += writeSync(fd, b, off, b.length - off, pos + off);
    pos += b.length;
  }
}
