/**
 * Error classes. Every error nofail throws carries a stable `code`; the
 * classes are handed to the native addon once (native.ts), so errors thrown
 * in C++ are instances of the same classes as errors thrown here.
 */

export type ErrorCode =
  | 'ENOMEM'
  | 'ERR_INVALID_ARG_TYPE'
  | 'ERR_INVALID_ARG_VALUE'
  | 'ERR_OUT_OF_RANGE'
  | 'ERR_INVALID_GFP'
  | 'ERR_DOUBLE_FREE'
  | 'ERR_BAD_PAGE'
  | 'ERR_POOL_CLOSED'
  | 'ERR_WOULD_BLOCK'
  | 'ERR_SYSTEM'
  | 'ERR_INVARIANT'
  | 'ERR_OOM_PANIC'
  | 'ERR_KILLED'
  | 'ERR_NOT_HOLDER'
  | 'EDEADLK';

/** Base class of nofail's errors that are neither TypeError nor RangeError. */
export class NofailError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** An allocation that could not be satisfied (`ENOMEM`). */
export class AllocError extends NofailError {
  /** The order asked for, when known. */
  order?: number;
  /** The GFP mask asked with, when known. */
  gfp?: number;
  constructor(message: string, details?: { order?: number; gfp?: number }) {
    super('ENOMEM', message);
    if (details?.order !== undefined) this.order = details.order;
    if (details?.gfp !== undefined) this.gfp = details.gfp;
  }
}

/** An argument of the wrong type (`ERR_INVALID_ARG_TYPE`). */
export class InvalidArgTypeError extends TypeError {
  readonly code = 'ERR_INVALID_ARG_TYPE' as const;
  constructor(message: string) {
    super(message);
    this.name = 'InvalidArgTypeError';
  }
}

/**
 * An argument whose type is right but whose value is not one nofail knows:
 * an options key nobody reads (`ERR_INVALID_ARG_VALUE`, a TypeError as in Node).
 */
export class InvalidArgValueError extends TypeError {
  readonly code = 'ERR_INVALID_ARG_VALUE' as const;
  constructor(message: string) {
    super(message);
    this.name = 'InvalidArgValueError';
  }
}

/** A number outside its range: order, size, pfn, watermark (`ERR_OUT_OF_RANGE`). */
export class OutOfRangeError extends RangeError {
  readonly code = 'ERR_OUT_OF_RANGE' as const;
  constructor(message: string) {
    super(message);
    this.name = 'OutOfRangeError';
  }
}

/** Unknown GFP bits or a combination the kernel rejects (`ERR_INVALID_GFP`). */
export class InvalidGfpError extends NofailError {
  constructor(message: string) {
    super('ERR_INVALID_GFP', message);
  }
}

/** A page freed twice (`ERR_DOUBLE_FREE`). */
export class DoubleFreeError extends NofailError {
  constructor(message: string) {
    super('ERR_DOUBLE_FREE', message);
  }
}

/** A handle this pool never gave out, a tail page, a forged, stale or foreign handle (`ERR_BAD_PAGE`). */
export class BadPageError extends NofailError {
  constructor(message: string) {
    super('ERR_BAD_PAGE', message);
  }
}

/** The pool is closed in this thread, or was destroyed (`ERR_POOL_CLOSED`). */
export class PoolClosedError extends NofailError {
  constructor(message = 'the pool is closed') {
    super('ERR_POOL_CLOSED', message);
  }
}

/** A synchronous call on the main thread that would have to wait (`ERR_WOULD_BLOCK`). */
export class WouldBlockError extends NofailError {
  constructor(message: string) {
    super('ERR_WOULD_BLOCK', message);
  }
}

/** A system call failed: mmap, mlock, madvise (`ERR_SYSTEM`). */
export class SystemError extends NofailError {
  /** The failed call's errno (set by native code). */
  errno?: number;
  /** The call that failed: 'mmap', 'mlock' or 'madvise' (set by native code). */
  syscall?: string;
  constructor(message: string) {
    super('ERR_SYSTEM', message);
  }
}

/** The classes the native addon throws, by code (native/binding/errors.h). */
export const nativeErrorClasses = {
  ERR_INVALID_ARG_TYPE: InvalidArgTypeError,
  ERR_OUT_OF_RANGE: OutOfRangeError,
  ERR_DOUBLE_FREE: DoubleFreeError,
  ERR_BAD_PAGE: BadPageError,
  ERR_POOL_CLOSED: PoolClosedError,
  ENOMEM: AllocError,
  ERR_SYSTEM: SystemError,
};

/** The allocating task was OOM-killed: it may not wait for memory any more (`ERR_KILLED`). */
export class KilledError extends NofailError {
  constructor(message: string) {
    super('ERR_KILLED', message);
  }
}

/** SharedMutex.unlock() by a thread or task that does not hold it (`ERR_NOT_HOLDER`). */
export class NotHolderError extends NofailError {
  constructor(message: string) {
    super('ERR_NOT_HOLDER', message);
  }
}

/** A synchronous lock of a SharedMutex this thread already holds: it would never wake (`EDEADLK`). */
export class DeadlockError extends NofailError {
  constructor(message: string) {
    super('EDEADLK', message);
  }
}
