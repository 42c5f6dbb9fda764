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
export { COSTLY_ORDER, formatGfp, GFP, type GfpMask, validateGfp } from './mm/gfp.js';
export { Page, type PageDescriptor } from './mm/page.js';
export { type AllocAsyncOptions, type AttachOptions, Pool, type PoolHandle, type PoolOptions } from './mm/pool.js';
export type { PoolStats, PsiLine } from './mm/stats/stats.js';
export { DEFAULT_SEEKS, SHRINK_BATCH, SHRINK_EMPTY, SHRINK_STOP, type Shrinker, type ShrinkControl } from './mm/reclaim/shrinker.js';
export type { Behavior } from './mm/slowpath.js';
export { applyScope, currentScope, GFP_SCOPE, withGfpScope } from './mm/gfp.js';
export type { FaultInjectOptions } from './mm/debug/faultinject.js';
export { onWarning, WARNING_CODES, type Warning, type WarningKind } from './mm/stats/warn.js';
export { PAGE_SIZE, parseSize } from './mm/size.js';
export { defaultWatermarks, type Watermarks } from './mm/watermarks.js';
export { Task, type TaskOptions } from './mm/task.js';
export type { OomKillInfo, OnOomKill } from './mm/oom/delivery.js';
export { OomPanicError, type OomOptions } from './mm/oom/killer.js';
export { KilledError } from './errors.js';
export { Reservation, type ReservationMode, type ReserveAsyncOptions, type ReserveOptions } from './mm/reserve.js';
export { Mempool, type MempoolHandle, type MempoolOptions, type MempoolStats } from './lib/mempool.js';
export { PageCache, type PageCacheOptions } from './lib/pagecache/pagecache.js';
export { DeadlockError, heldReclaimFsLocks, mutexName, NotHolderError, SharedMutex, type SharedMutexHandle, type SharedMutexOptions } from './lib/mutex.js';
export { retryAlloc, retryAllocSync, RetryAllocError, type RetryAllocOptions } from './lib/retry.js';
export { orderForSize, PoolBuffer } from './mm/buffer.js';
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
} from './service/metrics.js';
export type { PoolPressure } from './mm/stats/stats.js';
export { type CacheRef, DEFAULT_CACHE_GFP, PoolCache, type PoolCacheOptions, type PoolCacheStats } from './service/poolcache.js';
export { type LoadShedOptions, LoadShedder, type LoadShedStats, PoolBody, ShedError, type ShedPolicy, type ShedReason } from './service/shed.js';
export { contentLength, readPoolBody, sendShed } from './service/http.js';
