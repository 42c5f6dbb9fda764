/**
 * The allocator's public API: what the package exports of mm/, and all that
 * lab/ and users see of it. nofail's own libraries (lib/) and service layer
 * (service/) use this plus the one internal surface, internal.ts.
 */
export { COSTLY_ORDER, formatGfp, GFP, type GfpMask, validateGfp } from './gfp.js';
export { applyScope, currentScope, GFP_SCOPE, withGfpScope } from './scope.js';
export { Page, type PageDescriptor } from './page.js';
export { type AllocAsyncOptions, type AttachOptions, Pool, type PoolHandle, type PoolOptions } from './pool.js';
export type { PoolPressure, PoolStats, PsiLine } from './stats/stats.js';
export { DEFAULT_SEEKS, SHRINK_BATCH, SHRINK_EMPTY, SHRINK_STOP, type Shrinker, type ShrinkControl } from './reclaim/shrinker.js';
export type { Behavior } from './slowpath.js';
export type { FaultInjectOptions } from './debug/faultinject.js';
export { onWarning, WARNING_CODES, type Warning, type WarningKind } from './stats/warn.js';
export { PAGE_SIZE, parseSize } from './size.js';
export { defaultWatermarks, type Watermarks } from './watermarks.js';
export { Task, type TaskOptions } from './task.js';
export type { OomKillInfo, OnOomKill } from './oom/delivery.js';
export { OomPanicError, type OomOptions } from './oom/killer.js';
export { Reservation, type ReservationMode, type ReserveAsyncOptions, type ReserveOptions } from './reserve.js';
export { orderForSize, PoolBuffer } from './buffer.js';
