/**
 * Node Buffers over pool pages, without a copy.
 *
 * A Buffer made here is a view of this thread's one ArrayBuffer over the
 * whole region (DESIGN §2), like `page.bytes`: writing into it writes the
 * page. What a view cannot do is expire: a Buffer kept after its page was
 * freed still reads and writes that memory, which by then may belong to
 * someone else. So the rule is the kernel's for a struct page pointer: the
 * holder of the Buffer must hold the page. PoolBuffer ties the two together
 * (free() once, or `using`), and a pool created with `poison` fills freed
 * pages so that a stale Buffer shows itself in tests.
 */
import { InvalidArgTypeError, OutOfRangeError } from '../errors.js';
import type { Page } from './page.js';
import { PAGE_SHIFT, PAGE_SIZE } from './size.js';

/** The smallest order whose block holds `size` bytes. */
export function orderForSize(size: number): number {
  const pages = Math.ceil(size / PAGE_SIZE);
  return pages <= 1 ? 0 : 32 - Math.clz32(pages - 1);
}

/** Validates a byte size for allocBuffer: an integer from 1 to one block of maxOrder. */
export function checkBufferSize(size: unknown, maxOrder: number): asserts size is number {
  if (typeof size !== 'number') throw new InvalidArgTypeError(`size must be a number of bytes; received ${typeof size}`);
  const max = PAGE_SIZE << maxOrder;
  if (!Number.isInteger(size) || size < 1 || size > max) {
    throw new OutOfRangeError(`size must be an integer from 1 to ${max} (one block of order ${maxOrder}); received ${size}`);
  }
}

/** A Buffer over `page`'s memory: `length` bytes from its start (default: the whole block). */
export function bufferOf(page: Page, length?: number): Buffer {
  const v = page.bytes; // throws for a freed, transferred or foreign-thread page
  if (length === undefined) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (typeof length !== 'number') throw new InvalidArgTypeError(`length must be a number; received ${typeof length}`);
  if (!Number.isInteger(length) || length < 0 || length > v.byteLength) {
    throw new OutOfRangeError(`length must be an integer from 0 to ${v.byteLength}; received ${length}`);
  }
  return Buffer.from(v.buffer, v.byteOffset, length);
}

/**
 * A page and a Buffer of the bytes asked for over it. free() returns the
 * page (once; a second call throws DoubleFreeError, like pool.free), after
 * which `buf` must not be used.
 */
export class PoolBuffer {
  readonly page: Page;
  /** Exactly the bytes asked for; the page may be larger (a power of two of pages). */
  readonly buf: Buffer;
  readonly #pool: { free(page: Page): void };

  /** @internal pool.allocBuffer() makes them. */
  static of(page: Page, size: number, pool: { free(page: Page): void }): PoolBuffer {
    return new PoolBuffer(page, size, pool);
  }

  private constructor(page: Page, size: number, pool: { free(page: Page): void }) {
    this.page = page;
    this.buf = bufferOf(page, size);
    this.#pool = pool;
  }

  /** Bytes asked for (buf.length). */
  get size(): number {
    return this.buf.length;
  }

  /** Pages the block takes (2^order). */
  get pages(): number {
    return 1 << this.page.order;
  }

  free(): void {
    this.#pool.free(this.page);
  }

  [Symbol.dispose](): void {
    this.free();
  }

  get [Symbol.toStringTag](): string {
    return `PoolBuffer ${this.buf.length} bytes at pfn ${this.page.pfn} (${this.page.size >> PAGE_SHIFT} pages)`;
  }
}
