/**
 * The options of Pool.create(), Pool.attach() and allocAsync(): their types,
 * and the check of each option, up front, with messages that name it
 * (piscina's habit). What a new pool is made of them is setup.ts.
 */
import { isMainThread, threadId } from 'node:worker_threads';
import type { AttachmentPolicy } from './attachment.js';
import { InvalidArgTypeError, OutOfRangeError } from '../errors.js';
import { optionKeys, validateOptions } from '../validators.js';
import type { OnOomKill } from './oom/delivery.js';
import { OOM_ENABLED, OOM_PANIC, OOM_REAPER, OOM_REAPER_DELAY_MS, type OomOptions } from './oom/killer.js';
import { PCP_BATCH, PCP_HIGH, type PcpSizing } from './pcp.js';
import type { Behavior } from './slowpath.js';
import { checkAdj, MAX_TASK_NAME } from './task-table.js';
import type { Watermarks } from './watermarks.js';

export interface PoolOptions {
  /** Bytes, or a size string like '64MiB'. Rounded up to whole pages. Default '64MiB'. */
  size?: number | string;
  /** Largest buddy order: blocks up to 4096 << maxOrder bytes. 0..15, default 10 (4 MiB). */
  maxOrder?: number;
  /** Pages or size strings; kernel-style defaults (DESIGN §3) for what is omitted. */
  watermarks?: Partial<Record<keyof Watermarks, number | string>>;
  /** Fault every page in at creation (MAP_POPULATE). */
  populate?: boolean;
  /** Lock the region in memory (mlock; RLIMIT_MEMLOCK applies). */
  mlock?: boolean;
  /** Ask for transparent huge pages (MADV_HUGEPAGE). */
  hugepages?: boolean;
  /** Give free blocks of at least this order back to the kernel (MADV_DONTNEED). Default: never. */
  releaseFreedOrder?: number;
  /**
   * This thread's page cache for order-0 pages (the kernel's per-CPU lists):
   * `false` to disable, or `{ batch, high }`. Default { batch: 63, high: 252 }.
   * Each thread that attaches chooses its own.
   */
  pcp?: false | { batch?: number; high?: number };
  /**
   * 'linux-4.0' (default): small allocations that cannot enter the
   * filesystem keep looping when reclaim makes no progress, as since the
   * 4.0 revert. 'linux-3.19': they fail (the accidental 2015 behaviour).
   */
  behavior?: Behavior;
  /**
   * Let synchronous allocations on the main thread block (Atomics.wait)
   * instead of throwing ERR_WOULD_BLOCK. Off by default: it stalls the
   * event loop.
   */
  allowMainThreadBlocking?: boolean;
  /**
   * The OOM killer at the slow path's OOM site (oom.ts): `true` or options.
   * Default: none — a too-small-to-fail allocation waits for memory instead.
   */
  oom?: boolean | OomOptions;
  /**
   * Zero every page as it is freed, so one tenant never reads another's
   * data (pages taken back from an exiting thread are zeroed natively).
   */
  zeroOnFree?: boolean;
  /**
   * Debug: fill free pages with 0x6b and check them on the next allocation;
   * a write to a freed page is reported as a 'use-after-free' warning.
   * Touches the whole pool at creation.
   */
  poison?: boolean;
  /**
   * Debug: report allocations that may enter filesystem reclaim while a
   * SharedMutex created with { reclaimFs: true } is held (lockdep's
   * fs_reclaim annotation). Also on when NOFAIL_LOCKDEP=1.
   */
  lockdep?: boolean;
  /** When an allocation stall is first reported, then every as long again; default 10 000 ms (the kernel's). */
  stallWarnMs?: number;
  /** This thread's task name in OOM reports. Default 'main' or 'worker-<threadId>'. */
  name?: string;
  /** This thread's oom_score_adj. Default -1000 (exempt) on the main thread, 0 in workers. */
  oomScoreAdj?: number;
  /** Runs on this thread when its task is OOM-killed. Default: a worker ends itself. */
  onOomKill?: OnOomKill;
}

/** Per-thread options of Pool.attach(). */
export interface AttachOptions {
  pcp?: PoolOptions['pcp'];
  allowMainThreadBlocking?: boolean;
  name?: string;
  oomScoreAdj?: number;
  onOomKill?: OnOomKill;
}

export interface AllocAsyncOptions {
  /** Abort the wait: the promise rejects with the signal's reason (an AbortError). */
  signal?: AbortSignal;
  /** Give up after this long: the promise rejects with a TimeoutError. */
  timeoutMs?: number;
}


/** Every option of Pool.create() and of Pool.attach(): an unknown key is a mistake (validateOptions). */
export const POOL_OPTION_KEYS = optionKeys<PoolOptions>()(
  'size',
  'maxOrder',
  'watermarks',
  'populate',
  'mlock',
  'hugepages',
  'releaseFreedOrder',
  'pcp',
  'behavior',
  'allowMainThreadBlocking',
  'oom',
  'zeroOnFree',
  'poison',
  'lockdep',
  'stallWarnMs',
  'name',
  'oomScoreAdj',
  'onOomKill',
);
export const ATTACH_OPTION_KEYS = optionKeys<AttachOptions>()('pcp', 'allowMainThreadBlocking', 'name', 'oomScoreAdj', 'onOomKill');
const OOM_KEYS = optionKeys<OomOptions>()('reaper', 'reaperDelayMs', 'victimTimeoutMs', 'panicOnOom');

export const DEFAULT_SIZE = 64 * 1024 * 1024;

export function checkOrder(order: unknown, maxOrder: number): asserts order is number {
  if (typeof order !== 'number') {
    throw new InvalidArgTypeError(`order must be a number; received ${typeof order}`);
  }
  if (!Number.isInteger(order) || order < 0 || order > maxOrder) {
    throw new OutOfRangeError(`order must be an integer from 0 to ${maxOrder}; received ${order}`);
  }
}

export function checkBool(value: unknown, name: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new InvalidArgTypeError(`${name} must be a boolean; received ${typeof value}`);
  return value;
}

export function resolvePolicy(o: AttachOptions): AttachmentPolicy {
  if (o.name !== undefined && (typeof o.name !== 'string' || o.name === '')) {
    throw new InvalidArgTypeError('name must be a non-empty string');
  }
  if (o.onOomKill !== undefined && typeof o.onOomKill !== 'function') throw new InvalidArgTypeError('onOomKill must be a function');
  return {
    allowMainThreadBlocking: checkBool(o.allowMainThreadBlocking, 'allowMainThreadBlocking'),
    name: (o.name ?? (isMainThread ? 'main' : `worker-${threadId}`)).slice(0, MAX_TASK_NAME),
    oomScoreAdj: checkAdj(o.oomScoreAdj ?? (isMainThread ? -1000 : 0)),
    onOomKill: o.onOomKill,
  };
}

/** The OOM configuration words (CTL.OOM_*), from Pool.create({ oom }). */
export function resolveOom(o: unknown): [flags: number, victimTimeoutMs: number, reaperDelayMs: number] {
  if (o === undefined || o === false) return [0, 0, OOM_REAPER_DELAY_MS];
  const opts: OomOptions = o === true ? {} : (o as OomOptions);
  if (opts === null || typeof opts !== 'object') throw new InvalidArgTypeError('oom must be a boolean or an object');
  validateOptions(opts, 'oom', OOM_KEYS);
  const ms = (v: unknown, name: string, dflt: number) => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 2 ** 31 - 1) {
      throw new OutOfRangeError(`oom.${name} must be an integer number of milliseconds >= 0; received ${String(v)}`);
    }
    return v;
  };
  const reaper = opts.reaper === undefined ? true : checkBool(opts.reaper, 'oom.reaper');
  const panic = checkBool(opts.panicOnOom, 'oom.panicOnOom');
  return [
    OOM_ENABLED | (reaper ? OOM_REAPER : 0) | (panic ? OOM_PANIC : 0),
    ms(opts.victimTimeoutMs, 'victimTimeoutMs', 0),
    ms(opts.reaperDelayMs, 'reaperDelayMs', OOM_REAPER_DELAY_MS),
  ];
}

export function resolveBehavior(b: unknown): number {
  if (b === undefined || b === 'linux-4.0') return 0;
  if (b === 'linux-3.19') return 1;
  throw new OutOfRangeError(`behavior must be 'linux-4.0' or 'linux-3.19'; received ${String(b)}`);
}

export function resolvePcp(option: unknown): PcpSizing | false {
  if (option === undefined) return { batch: PCP_BATCH, high: PCP_HIGH, adaptive: true };
  if (option === false) return false;
  if (option === null || typeof option !== 'object') {
    throw new InvalidArgTypeError('pcp must be false or an object { batch, high }');
  }
  validateOptions(option, 'pcp', ['batch', 'high']);
  const o = option as { batch?: unknown; high?: unknown };
  const batch = o.batch ?? PCP_BATCH;
  const high = o.high ?? Math.max(PCP_HIGH, 4 * (batch as number));
  if (typeof batch !== 'number' || !Number.isInteger(batch) || batch < 1 || batch > 4096) {
    throw new OutOfRangeError(`pcp.batch must be an integer from 1 to 4096; received ${String(batch)}`);
  }
  if (typeof high !== 'number' || !Number.isInteger(high) || high < batch || high > 65536) {
    throw new OutOfRangeError(`pcp.high must be an integer from pcp.batch to 65536; received ${String(high)}`);
  }
  // Sizes given are kept as given; the defaults adapt to the thread's demand (pcp.ts).
  return { batch, high, adaptive: false };
}


/**
 * Validates the options of an async wait and returns what makes its
 * AbortSignal. The signal is made only when the caller is about to wait:
 * AbortSignal.timeout() arms a timer, which an allocation served by the
 * fast path (nearly all of them) should not pay for. The timeout still
 * counts from this call.
 */
export function asyncSignal(o: AllocAsyncOptions): () => AbortSignal | undefined {
  validateOptions(o, 'options', ['signal', 'timeoutMs'] satisfies (keyof AllocAsyncOptions)[]);
  const { signal, timeoutMs } = o;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidArgTypeError('options.signal must be an AbortSignal');
  if (timeoutMs === undefined) return () => signal;
  if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0) || !Number.isFinite(timeoutMs)) {
    throw new OutOfRangeError(`options.timeoutMs must be a finite number >= 0; received ${String(timeoutMs)}`);
  }
  const start = performance.now();
  return () => {
    // AbortSignal.timeout() wants whole milliseconds (a fraction rounds up),
    // and timers above 2^31 - 1 ms fire at once, so longer ones are capped.
    const left = Math.max(0, timeoutMs - (performance.now() - start));
    const timeout = AbortSignal.timeout(Math.min(Math.ceil(left), 2 ** 31 - 1));
    return signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
  };
}
