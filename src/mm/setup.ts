/**
 * What a new pool is made of, from Pool.create()'s options (whose types and
 * per-option checks are options.ts): native create()'s arguments, and the
 * pool-wide words of a fresh control block — behavior, OOM configuration,
 * fill on free, stall reports, lockdep — which every thread that attaches
 * reads. And the checks of Pool.attach()'s handle before native sees it.
 */
import { CONTROL_BYTES, CTL } from '../binding/control.js';
import { FILL, MAX_ORDER_LIMIT, MAX_PAGES, type NativeCreateOptions } from '../binding/native.js';
import { BadPageError, InvalidArgTypeError, OutOfRangeError } from '../errors.js';
import { type AttachOptions, checkBool, DEFAULT_SIZE, type PoolOptions, resolveBehavior, resolveOom, resolvePcp, resolvePolicy } from './options.js';
import { PAGE_SIZE, parsePageSize } from './size.js';
import { STALL_WARN_MS } from './slowpath.js';
import { resolveWatermarks } from './watermarks.js';

export interface CreateArgs {
  /** native create()'s options, every one resolved. */
  options: NativeCreateOptions;
  control: SharedArrayBuffer;
  ctl: Int32Array;
}

export function resolveCreate(options: PoolOptions): CreateArgs {
  if (options === null || typeof options !== 'object') {
    throw new InvalidArgTypeError(`options must be an object; received ${options === null ? 'null' : typeof options}`);
  }
  const pages = parsePageSize(options.size ?? DEFAULT_SIZE, 'size');
  if (pages < 1 || pages > MAX_PAGES) {
    throw new OutOfRangeError(`size must be from 4096 bytes to 2 TiB; received ${options.size}`);
  }
  const maxOrder = options.maxOrder ?? 10;
  if (typeof maxOrder !== 'number') throw new InvalidArgTypeError('maxOrder must be a number');
  if (!Number.isInteger(maxOrder) || maxOrder < 0 || maxOrder > MAX_ORDER_LIMIT) {
    throw new OutOfRangeError(`maxOrder must be an integer from 0 to ${MAX_ORDER_LIMIT}; received ${maxOrder}`);
  }
  const wm = resolveWatermarks(options.watermarks, pages);
  const zero = checkBool(options.zeroOnFree, 'zeroOnFree');
  const poison = checkBool(options.poison, 'poison');
  if (zero && poison) throw new OutOfRangeError('zeroOnFree and poison are exclusive: a poisoned page cannot also be zeroed');
  const fill = poison ? FILL.POISON : zero ? FILL.ZERO : FILL.NONE;
  const populate = checkBool(options.populate, 'populate');
  const mlock = checkBool(options.mlock, 'mlock');
  const hugepages = checkBool(options.hugepages, 'hugepages');
  let releaseOrder = -1;
  if (options.releaseFreedOrder !== undefined) {
    const r = options.releaseFreedOrder;
    if (typeof r !== 'number') throw new InvalidArgTypeError(`releaseFreedOrder must be a number; received ${typeof r}`);
    if (!Number.isInteger(r) || r < 0 || r > maxOrder) {
      throw new OutOfRangeError(`releaseFreedOrder must be an integer from 0 to ${maxOrder} (maxOrder); received ${r}`);
    }
    releaseOrder = r;
  }
  resolvePcp(options.pcp);
  resolvePolicy(options);
  const behavior = resolveBehavior(options.behavior);
  const oom = resolveOom(options.oom);
  const stall = options.stallWarnMs ?? STALL_WARN_MS;
  if (typeof stall !== 'number' || !Number.isInteger(stall) || stall < 1 || stall > 2 ** 31 - 1) {
    throw new OutOfRangeError(`stallWarnMs must be a positive integer number of milliseconds; received ${String(stall)}`);
  }
  const lockdep = checkBool(options.lockdep, 'lockdep') || process.env.NOFAIL_LOCKDEP === '1';

  const control = new SharedArrayBuffer(CONTROL_BYTES);
  const ctl = new Int32Array(control);
  ctl[CTL.BEHAVIOR] = behavior;
  [ctl[CTL.OOM_FLAGS], ctl[CTL.OOM_VICTIM_TIMEOUT_MS], ctl[CTL.OOM_REAPER_DELAY_MS]] = oom;
  ctl[CTL.FILL_ON_FREE] = fill;
  ctl[CTL.STALL_WARN_MS] = stall;
  ctl[CTL.LOCKDEP] = lockdep ? 1 : 0;
  const { min, low, high } = wm;
  return {
    options: { bytes: pages * PAGE_SIZE, maxOrder, min, low, high, populate, mlock, hugepages, fill, releaseOrder },
    control,
    ctl,
  };
}

/** Pool.attach()'s handle and options, checked before native sees the handle. */
export function checkAttach(handle: { id: number; nonce: number; control: SharedArrayBuffer }, options: AttachOptions): void {
  if (
    handle === null ||
    typeof handle !== 'object' ||
    typeof handle.id !== 'number' ||
    typeof handle.nonce !== 'number' ||
    !(handle.control instanceof SharedArrayBuffer)
  ) {
    throw new InvalidArgTypeError('handle must be a pool handle { id, nonce, control } from pool.handle');
  }
  if (handle.control.byteLength < CONTROL_BYTES) throw new BadPageError('handle.control is not a pool control block');
  if (options === null || typeof options !== 'object') throw new InvalidArgTypeError('options must be an object');
  resolvePcp(options.pcp);
  resolvePolicy(options);
}
