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
export { type AllocAsyncOptions, type AttachOptions, Pool, type PoolHandle, type PoolOptions } from './pool.js';
export type { PoolStats, PsiLine } from './stats.js';
export { DEFAULT_SEEKS, SHRINK_BATCH, SHRINK_EMPTY, SHRINK_STOP, type Shrinker, type ShrinkControl } from './shrinker.js';
export type { Behavior } from './slowpath.js';
export { applyScope, currentScope, GFP_SCOPE, withGfpScope } from './gfp.js';
export type { FaultInjectOptions } from './faultinject.js';
export { onWarning, WARNING_CODES, type Warning, type WarningKind } from './warn.js';
export { PAGE_SIZE, parseSize } from './size.js';
export { defaultWatermarks, type Watermarks } from './watermarks.js';
export { Task, type TaskOptions } from './task.js';
export type { OomKillInfo, OnOomKill } from './kill.js';
export { OomPanicError, type OomOptions } from './oom.js';
export { KilledError } from './errors.js';
export { Reservation, type ReservationMode, type ReserveAsyncOptions, type ReserveOptions } from './reserve.js';
export { Mempool, type MempoolHandle, type MempoolOptions, type MempoolStats } from './mempool.js';
export { PageCache, type PageCacheOptions } from './pagecache.js';
export { DeadlockError, heldReclaimFsLocks, mutexName, NotHolderError, SharedMutex, type SharedMutexHandle, type SharedMutexOptions } from './mutex.js';
export { retryAlloc, retryAllocSync, RetryAllocError, type RetryAllocOptions } from './retry.js';
export { orderForSize, PoolBuffer } from './buffer.js';
export {
  exposition,
  type LabelledPool,
  METRICS_CONTENT_TYPE,
  type MetricFamily,
  metricFamilies,
  metricFamiliesOf,
  metricsOf,
  type MetricSample,
  type MetricsOptions,
  type MetricType,
} from './metrics.js';
export type { PoolPressure } from './stats.js';
export { type CacheRef, DEFAULT_CACHE_GFP, PoolCache, type PoolCacheOptions, type PoolCacheStats } from './poolcache.js';
export { type LoadShedOptions, LoadShedder, type LoadShedStats, PoolBody, ShedError, type ShedPolicy, type ShedReason } from './service/shed.js';
export { contentLength, readPoolBody, sendShed } from './service/http.js';
