/**
 * The one warning path (STYLE habit 7): warn_alloc() and WARN_ON_ONCE for
 * nofail. Nothing else in nofail prints, emits or publishes a warning.
 *
 * The kernel's rules (mm/page_alloc.c warn_alloc, lib/ratelimit.c), and why
 * each holds here too:
 * - __GFP_NOWARN silences a warning: the caller handles failure itself. The
 *   stall warning is the exception, and the caller makes it: the kernel
 *   passes the mask with NOWARN stripped ("page allocation stalls for Nms").
 * - Rate-limited, interval 10 s, burst 1 (nopage_rs): a thrashing allocator
 *   fails thousands of times a second and one line tells the story. The
 *   warnings that were held back are counted, and the count rides on the
 *   next one that goes out ("N callbacks suppressed").
 * - Never printed synchronously under a lock: the 4.9 stall warning was
 *   dropped because printk under pressure made lockups worse. warn() only
 *   decides and enqueues; subscriber code (diagnostics_channel subscribers,
 *   'warning' listeners) runs later from this thread's event loop, never
 *   inside the allocation that raised it.
 * - A worker blocked in Atomics.wait runs no event loop, so its queued
 *   warnings would wait until it wakes, which is when they stop mattering.
 *   Each warning is therefore also posted at once on the BroadcastChannel
 *   'nofail:warnings'. Posting only copies the message into the other
 *   threads' queues, and their loops deliver it while this one is blocked.
 *
 * Differences from the kernel, on purpose: the rate limit is kept per kind
 * (the kernel's failure and stall warnings share nopage_rs) and per thread
 * (module state is per isolate; there is no process-wide region to keep it
 * in without a pool).
 */
import { subscribe, unsubscribe, channel as dcChannel } from 'node:diagnostics_channel';
import { BroadcastChannel, threadId } from 'node:worker_threads';
import { InvalidArgTypeError } from '../../errors.js';

export type WarningKind =
  | 'alloc-failure'
  | 'alloc-stall'
  | 'gfp-misuse'
  | 'alloc-deadlock'
  | 'oom-kill'
  | 'livelock'
  | 'use-after-free'
  | 'lockdep';

/** Stable codes, one per kind: what `process.on('warning')` listeners match on. */
export const WARNING_CODES = Object.freeze({
  /** "page allocation failure: order:N, mode:…" (warn_alloc). */
  'alloc-failure': 'NOFAIL_ALLOC_FAILURE',
  /** "page allocation stalls for Nms, order:N" (4.9's stall warning: first at 10 s, then every 10 s). */
  'alloc-stall': 'NOFAIL_ALLOC_STALL',
  /** A GFP combination the kernel warns about (NOFAIL with order > 1, NOFAIL without DIRECT_RECLAIM …). */
  'gfp-misuse': 'NOFAIL_GFP_MISUSE',
  /** XFS's canary: "possible memory allocation deadlock size N in CALLER (mode:0x…)". */
  'alloc-deadlock': 'NOFAIL_ALLOC_DEADLOCK',
  /** "Out of memory: Killed task …", with the kernel's fields. */
  'oom-kill': 'NOFAIL_OOM_KILL',
  /** A retry loop that makes no progress and has no one to wait for. */
  livelock: 'NOFAIL_LIVELOCK',
  /** Page poisoning found a write to a free page ("page poison check failed"). */
  'use-after-free': 'NOFAIL_USE_AFTER_FREE',
  /** A lock that FS reclaim may need is held across an allocation that may enter FS reclaim. */
  lockdep: 'NOFAIL_LOCKDEP',
} as const satisfies Record<WarningKind, string>);

export type WarningCode = (typeof WARNING_CODES)[WarningKind];

/** What subscribers receive: the caller's details, then these fields (which win over details). */
export interface Warning {
  readonly code: WarningCode;
  readonly kind: WarningKind;
  readonly message: string;
  /** Date.now() when warn() was called: comparable across threads. */
  readonly time: number;
  /** The thread that raised it (worker_threads.threadId; 0 is the main thread). */
  readonly threadId: number;
  /** Warnings of this kind held back by the rate limit since the last one that went out. */
  readonly suppressed?: number;
  readonly [detail: string]: unknown;
}

export interface WarnOptions {
  /** The caller's GFP mask: __GFP_NOWARN (0x2000) silences the warning. */
  gfp?: number;
  /** false: bypass the rate limit (WARN_ON_ONCE-style one-off warnings). Default true. */
  ratelimit?: boolean;
}

/** ratelimit_state of warn_alloc (nopage_rs): DEFINE_RATELIMIT_STATE(nopage_rs, 10*HZ, 1). */
export const WARN_RATELIMIT_INTERVAL_MS = 10_000;
export const WARN_RATELIMIT_BURST = 1;

/** The BroadcastChannel every thread posts its warnings on. */
export const WARNING_BROADCAST_NAME = 'nofail:warnings';

// GFP.NOWARN (gfp.ts). Not imported: gfp.ts loads the addon, and the
// warning path must load, and work, without it.
const GFP_NOWARN = 0x2000;

const KINDS = Object.keys(WARNING_CODES) as WarningKind[];

/** The diagnostics_channel name of a kind: `nofail:${kind}`. */
export function warningChannelName(kind: WarningKind): string {
  return `nofail:${kind}`;
}

// ___ratelimit()'s state, one per kind. `begin` is NaN until the first call
// (the kernel uses 0 for "not started").
interface RatelimitState {
  begin: number;
  printed: number;
  missed: number;
}
const ratelimits = new Map<WarningKind, RatelimitState>();
const onceKeys = new Set<string>();

/**
 * ___ratelimit(): true if this call may print. A window of `interval` opens
 * at the first call; `burst` calls print in it, the rest are counted in
 * `missed`. The first call after the window has passed (strictly after,
 * time_is_before_jiffies) opens a new one.
 */
function ratelimitAllows(rs: RatelimitState, now: number): boolean {
  if (Number.isNaN(rs.begin)) rs.begin = now;
  if (rs.begin + WARN_RATELIMIT_INTERVAL_MS < now) {
    rs.begin = now;
    rs.printed = 0;
  }
  if (rs.printed < WARN_RATELIMIT_BURST) {
    rs.printed++;
    return true;
  }
  rs.missed++;
  return false;
}

/**
 * Raises a warning; true if it goes out. Never runs subscriber code and
 * never throws because of how a warning is delivered; it throws only for an
 * unknown `kind`, which is a bug in the caller.
 */
export function warn(
  kind: WarningKind,
  message: string,
  details: Record<string, unknown> = {},
  opts: WarnOptions = {},
): boolean {
  const code = WARNING_CODES[kind];
  if (code === undefined) {
    throw new InvalidArgTypeError(`warn(kind): unknown warning kind '${String(kind)}' (expected one of ${KINDS.join(', ')})`);
  }
  if (opts.gfp !== undefined && (opts.gfp & GFP_NOWARN) !== 0) return false;
  let suppressed = 0;
  if (opts.ratelimit !== false) {
    let rs = ratelimits.get(kind);
    if (rs === undefined) ratelimits.set(kind, (rs = { begin: NaN, printed: 0, missed: 0 }));
    if (!ratelimitAllows(rs, performance.now())) return false;
    suppressed = rs.missed;
    rs.missed = 0;
  }
  const w: Warning = {
    ...details,
    code,
    kind,
    message: String(message),
    time: Date.now(),
    threadId,
    ...(suppressed > 0 ? { suppressed } : {}),
  };
  broadcast(w);
  enqueue(w);
  return true;
}

/**
 * WARN_ON_ONCE for a key: the first call per thread raises the warning
 * (bypassing the rate limit, or it could be lost for good); later calls
 * with the same key do nothing. True if it went out.
 */
export function warnOnce(key: string, kind: WarningKind, message: string, details: Record<string, unknown> = {}): boolean {
  if (onceKeys.has(key)) return false;
  onceKeys.add(key);
  return warn(kind, message, details, { ratelimit: false });
}

/**
 * Calls `cb` for every warning of every kind, from this thread (through
 * diagnostics_channel) and from every other thread (through the
 * BroadcastChannel), always asynchronously. A thread's own warnings come
 * once: broadcast copies from this thread are dropped. Returns the
 * unsubscribe function. The subscription does not keep the process alive.
 */
export function onWarning(cb: (w: Warning) => void): () => void {
  if (typeof cb !== 'function') {
    throw new InvalidArgTypeError(`onWarning(cb): cb must be a function; received ${typeof cb}`);
  }
  const local = (msg: unknown): void => cb(msg as Warning);
  const remote = (e: Event): void => {
    const w = (e as MessageEvent).data as Warning | undefined;
    // Another BroadcastChannel in this thread (a second copy of nofail)
    // would hand us our own warnings: diagnostics_channel already has them.
    if (isWarning(w) && w.threadId !== threadId) cb(w);
  };
  for (const kind of KINDS) subscribe(warningChannelName(kind), local);
  const bc = broadcastChannel();
  bc?.addEventListener('message', remote);
  let subscribed = true;
  return () => {
    if (!subscribed) return;
    subscribed = false;
    for (const kind of KINDS) unsubscribe(warningChannelName(kind), local);
    bc?.removeEventListener('message', remote);
  };
}

/** Forgets rate-limit windows and WARN_ON_ONCE keys of this thread (tests). */
export function resetWarnings(): void {
  ratelimits.clear();
  onceKeys.clear();
}

function isWarning(w: unknown): w is Warning {
  return (
    typeof w === 'object' &&
    w !== null &&
    typeof (w as Warning).kind === 'string' &&
    WARNING_CODES[(w as Warning).kind] === (w as Warning).code &&
    typeof (w as Warning).threadId === 'number'
  );
}

// --- delivery to other threads: at once -------------------------------------

let bcInstance: BroadcastChannel | null | undefined;

/** This thread's channel, made on first use and unref()'d; null where it cannot be made. */
function broadcastChannel(): BroadcastChannel | null {
  if (bcInstance === undefined) {
    try {
      bcInstance = new BroadcastChannel(WARNING_BROADCAST_NAME);
      bcInstance.unref();
    } catch {
      bcInstance = null;
    }
  }
  return bcInstance;
}

function broadcast(w: Warning): void {
  const bc = broadcastChannel();
  if (bc === null) return;
  try {
    bc.postMessage(w);
  } catch {
    // A detail that cannot be cloned (a function, a symbol): send the
    // warning with that detail as text rather than not at all.
    try {
      bc.postMessage(cloneable(w));
    } catch {
      // Nothing more to do; the local path still delivers it.
    }
  }
}

function cloneable(w: Warning): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(w)) {
    try {
      out[k] = structuredClone(v);
    } catch {
      out[k] = String(v);
    }
  }
  return out;
}

// --- delivery in this thread: from the event loop -----------------------------

let pending: Warning[] = [];
let flushScheduled = false;

function enqueue(w: Warning): void {
  pending.push(w);
  if (!flushScheduled) {
    flushScheduled = true;
    // setImmediate, not queueMicrotask: a microtask would run as soon as the
    // current JavaScript stack unwinds, which can still be inside an async
    // allocation that holds a lock across awaits.
    setImmediate(flush);
  }
}

function flush(): void {
  const batch = pending;
  pending = [];
  flushScheduled = false;
  for (const w of batch) {
    // publish() runs subscribers synchronously and reports their exceptions
    // on process.nextTick, so one bad subscriber cannot stop the rest.
    const ch = dcChannel(warningChannelName(w.kind));
    if (ch.hasSubscribers) ch.publish(w);
    // emitWarning itself defers the 'warning' event to process.nextTick.
    process.emitWarning(w.message, { code: w.code, detail: formatDetail(w) });
  }
}

const OWN_FIELDS = new Set(['code', 'kind', 'message', 'time', 'threadId', 'suppressed']);

/** `key: value` lines of the caller's details, then the kernel's "N callbacks suppressed". */
function formatDetail(w: Warning): string {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(w)) {
    if (OWN_FIELDS.has(k)) continue;
    lines.push(`${k}: ${formatValue(v)}`);
  }
  if (w.suppressed) lines.push(`${w.suppressed} callbacks suppressed`);
  return lines.join('\n');
}

function formatValue(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null) {
    try {
      return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
    } catch {
      return String(v);
    }
  }
  return String(v);
}
