/**
 * nofail: a userspace page allocator for Node.js with the Linux kernel's
 * answers to running out of memory. See README.md; ARCHITECTURE.md maps the
 * folders below.
 */
export {
  AllocError,
  BadPageError,
  DeadlockError,
  DoubleFreeError,
  type ErrorCode,
  InvalidArgTypeError,
  InvalidArgValueError,
  InvalidGfpError,
  KilledError,
  NofailError,
  NotHolderError,
  OutOfRangeError,
  PoolClosedError,
  SystemError,
  WouldBlockError,
} from './errors.js';
// The allocator (mm/).
export * from './mm/index.js';
// Libraries on the allocator (lib/).
export { Mempool, type MempoolHandle, type MempoolOptions, type MempoolStats } from './lib/mempool.js';
export { PageCache, type PageCacheOptions, type PageCacheStats, type PinnedBlock } from './lib/pagecache/pagecache.js';
export { heldReclaimFsLocks, mutexName } from './lib/mutex/held.js';
export { type LockAsyncOptions, SharedMutex, type SharedMutexHandle, type SharedMutexOptions } from './lib/mutex/mutex.js';
export { retryAlloc, retryAllocSync, RetryAllocError, type RetryAllocOptions } from './lib/retry.js';
// The service layer (service/).
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
export { type CacheMeta, type CacheRef, DEFAULT_CACHE_GFP, PoolCache, type PoolCacheOptions, type PoolCacheStats } from './service/poolcache.js';
export { type BodyState, type LoadShedOptions, LoadShedder, type LoadShedStats, PoolBody, type RefusalTarget, ShedError, type ShedPolicy, type ShedReason } from './service/shed.js';
export { contentLength, hasBody, type PageSource, readPoolBody, sendPages, type SendPagesOptions, sendShed } from './service/http.js';
