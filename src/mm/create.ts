/**
 * Pool.create()'s options, validated and turned into what native create()
 * takes plus the pool-wide words of a fresh control block (behavior, OOM
 * configuration, fill on free, stall reports, lockdep), which every thread
 * that attaches reads; and Pool.attach()'s arguments, validated.
 */
import { CONTROL_BYTES, CTL } from '../binding/control.js';
import { BadPageError, InvalidArgTypeError, OutOfRangeError } from '../errors.js';
import { type AttachOptions, checkBool, DEFAULT_SIZE, type PoolOptions, resolveBehavior, resolveOom, resolvePcp, resolvePolicy } from './options.js';
import { POISON_BYTE } from './debug/poison.js';
import { PAGE_SIZE, parseSize } from './size.js';
import { STALL_WARN_MS } from './slowpath.js';
import { resolveWatermarks, type Watermarks } from './watermarks.js';

export interface CreateArgs {
  bytes: number;
  maxOrder: number;
  wm: Watermarks;
  /** native create() flags: 1 populate, 2 mlock, 4 hugepages, 8 zeroOnFree, 16 poison. */
  flags: number;
  releaseOrder: number;
  control: SharedArrayBuffer;
  ctl: Int32Array;
}

export function resolveCreate(options: PoolOptions): CreateArgs {
  if (options === null || typeof options !== 'object') {
    throw new InvalidArgTypeError(`options must be an object; received ${options === null ? 'null' : typeof options}`);
  }
  const pages = Math.ceil(parseSize(options.size ?? DEFAULT_SIZE, 'size') / PAGE_SIZE);
  if (pages < 1 || pages > 2 ** 29 - 1) {
    throw new OutOfRangeError(`size must be from 4096 bytes to 2 TiB; received ${options.size}`);
  }
  const maxOrder = options.maxOrder ?? 10;
  if (typeof maxOrder !== 'number') throw new InvalidArgTypeError('maxOrder must be a number');
  if (!Number.isInteger(maxOrder) || maxOrder < 0 || maxOrder > 15) {
    throw new OutOfRangeError(`maxOrder must be an integer from 0 to 15; received ${maxOrder}`);
  }
  const wm = resolveWatermarks(options.watermarks, pages);
  const zero = checkBool(options.zeroOnFree, 'zeroOnFree');
  const poison = checkBool(options.poison, 'poison');
  if (zero && poison) throw new OutOfRangeError('zeroOnFree and poison are exclusive: a poisoned page cannot also be zeroed');
  const flags =
    (checkBool(options.populate, 'populate') ? 1 : 0) |
    (checkBool(options.mlock, 'mlock') ? 2 : 0) |
    (checkBool(options.hugepages, 'hugepages') ? 4 : 0) |
    (zero ? 8 : 0) |
    (poison ? 16 : 0);
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
  ctl[CTL.FILL_ON_FREE] = poison ? POISON_BYTE : zero ? 0 : -1;
  ctl[CTL.STALL_WARN_MS] = stall;
  ctl[CTL.LOCKDEP] = lockdep ? 1 : 0;
  return { bytes: pages * PAGE_SIZE, maxOrder, wm, flags, releaseOrder, control, ctl };
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
