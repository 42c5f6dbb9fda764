/**
 * nofail: a userspace page allocator for Node.js with the Linux kernel's
 * answers to running out of memory. See README.md.
 */
export {
  AllocError,
  BadPageError,
  DoubleFreeError,
  type ErrorCode,
  InvalidArgTypeError,
  InvalidGfpError,
  NofailError,
  OutOfRangeError,
  PoolClosedError,
  SystemError,
  WouldBlockError,
} from './errors.js';
export { COSTLY_ORDER, formatGfp, GFP, type GfpMask, validateGfp } from './gfp.js';
export { Page, type PageDescriptor } from './page.js';
export { Pool, type PoolHandle, type PoolOptions, type PoolStats } from './pool.js';
export { PAGE_SIZE, parseSize } from './size.js';
export { defaultWatermarks, type Watermarks } from './watermarks.js';
