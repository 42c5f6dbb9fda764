/**
 * Load shedding: admit a request body only if its pages can be had within
 * a budget, refuse it (413, or 503 with Retry-After) otherwise, and answer
 * the refusal so that the client hears it (refusal.ts).
 *
 * A body of declared length is decided before a byte of it is read
 * (claim): all its pages at once, or a refusal. The checks, cheap first:
 *   1. size: over maxBodyBytes, or more pages than the pool has: 413;
 *   2. the pages now, from free memory (one allocBulk, all or none);
 *   3. the pages by reclaiming caches (PoolCache's shrinker) — a cache is
 *      memory a body may have, so a full cache is not pressure;
 *   4. only then waiting for other requests to free theirs, within
 *      budgetMs, by policy (steps 3 and 4 are the allocator's own loop:
 *      a reservation or an allocation that cannot be had reclaims, goes
 *      round again while reclaim frees something, and only then waits):
 *      - 'reserve': one reservation for the whole body (pool.reserveAsync),
 *        so a request never sits on part of its memory while it waits for
 *        the rest;
 *      - 'loop': page by page with allocAsync (GFP.KERNEL: reclaim, then
 *        wait for frees — the allocator's own "too small to fail" loop),
 *        cut off by the budget; partial holders can crowd each other out,
 *        which is what the comparison between the two is for;
 *      - 'nowait': neither reclaim nor waiting: free memory or a refusal.
 * Pressure — PSI some/full avg10 over its threshold, or free pages below
 * the minFree watermark — is what step 4 reads: under pressure a body that
 * does not fit after steps 2 and 3 is refused at once instead of waiting,
 * since the memory it would wait for is held by requests like it. Pressure
 * never refuses a body that fits: shedding those is what left a pool
 * idle under overload (issue 14).
 *
 * Bodies of unknown length (chunked) are read page by page under the same
 * rules, the budget counted from admit() (a slow uploader spends it too).
 * Requests without a body allocate nothing and are not shed for memory;
 * gate() is there for the routes that want them shed all the same.
 *
 * Nothing here blocks the event loop: every wait is an awaited promise
 * (allocAsync, reserveAsync). Counting rule: every refusal is counted
 * once, by reason, when it is decided (admit/claim/read, gate, refuse).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { AllocError, OutOfRangeError, WouldBlockError } from '../errors.js';
import { optionKeys, validateOptions } from '../validators.js';
import { GFP, type GfpMask, type Page, PAGE_SIZE, parseSize, type Pool, validateGfp } from '../mm/index.js';
import { type BodyLedger, PoolBody, readInto } from './body.js';
import { answerRefusal, drainAfter, type RefusalTarget, SHED_REASONS, ShedError, type ShedReason } from './refusal.js';

export { PoolBody, type BodyState } from './body.js';
export { type RefusalTarget, ShedError, type ShedReason } from './refusal.js';

export type ShedPolicy = 'reserve' | 'loop' | 'nowait';

export interface LoadShedOptions {
  /** How body pages are waited for once neither free memory nor reclaim has them; default 'reserve'. */
  policy?: ShedPolicy;
  /** Time allowed to obtain a body's pages, ms; default 100. */
  budgetMs?: number;
  /** Larger bodies are refused with 413; default 1 MiB. */
  maxBodyBytes?: number | string;
  /** Under pressure while PSI some avg10 (percent) is above this; default 60. `false` turns the check off. */
  psiSome?: number | false;
  /** Under pressure while PSI full avg10 (percent) is above this; default 30. `false` turns the check off. */
  psiFull?: number | false;
  /** Under pressure while free pages (with this thread's page cache) are below this watermark plus reserved pages; default 'min'. `false`: off. */
  minFree?: 'min' | 'low' | 'high' | false;
  /** Retry-After on 503 responses, seconds; default 1. */
  retryAfterSeconds?: number;
  /** How long a refused request's unread body is drained after the answer went out before its connection is closed, ms; default 5000. */
  lingerMs?: number;
  /**
   * GFP mask of the 'loop' policy's allocations; default GFP.KERNEL | NOWARN,
   * the allocator's plain loop. With an OOM killer configured that may kill
   * to admit a body; add GFP.RETRY_MAYFAIL to refuse instead.
   */
  gfp?: GfpMask;
}

export interface LoadShedStats {
  admitted: number;
  /** Refusals by reason. */
  shed: Record<ShedReason, number>;
  /** Bodies read, bytes. */
  bytes: number;
  /** Pages held by open bodies now (admitted or being read; neither freed nor adopted by a cache). */
  bodyPages: number;
  /** Bodies admitted at once from free memory or by reclaiming caches, without waiting. */
  admittedAtOnce: number;
  /** Refused connections closed because the client was still sending lingerMs after its answer. */
  cutOff: number;
}

interface Resolved {
  policy: ShedPolicy;
  budgetMs: number;
  maxBodyBytes: number;
  psiSome: number | false;
  psiFull: number | false;
  minFree: 'min' | 'low' | 'high' | false;
  retryAfterSeconds: number;
  lingerMs: number;
  gfp: number;
}

const SHED_KEYS = optionKeys<LoadShedOptions>()('policy', 'budgetMs', 'maxBodyBytes', 'psiSome', 'psiFull', 'minFree', 'retryAfterSeconds', 'lingerMs', 'gfp');

function resolve(o: LoadShedOptions): Resolved {
  validateOptions(o, 'load-shedding options', SHED_KEYS);
  const policy = o.policy ?? 'reserve';
  if (policy !== 'reserve' && policy !== 'loop' && policy !== 'nowait') {
    throw new OutOfRangeError(`policy must be 'reserve', 'loop' or 'nowait'; received ${String(policy)}`);
  }
  const num = (v: unknown, name: string, def: number, max: number): number => {
    if (v === undefined) return def;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max) throw new OutOfRangeError(`${name} must be a number from 0 to ${max}; received ${String(v)}`);
    return v;
  };
  const pct = (v: unknown, name: string, def: number): number | false => (v === false ? false : num(v, name, def, 100));
  const minFree = o.minFree ?? 'min';
  if (minFree !== false && minFree !== 'min' && minFree !== 'low' && minFree !== 'high') {
    throw new OutOfRangeError(`minFree must be 'min', 'low', 'high' or false; received ${String(minFree)}`);
  }
  const gfp = o.gfp ?? GFP.KERNEL | GFP.NOWARN;
  validateGfp(gfp);
  const maxBodyBytes = parseSize(o.maxBodyBytes ?? 1024 * 1024, 'maxBodyBytes');
  return {
    policy,
    budgetMs: num(o.budgetMs, 'budgetMs', 100, 600_000),
    maxBodyBytes,
    psiSome: pct(o.psiSome, 'psiSome', 60),
    psiFull: pct(o.psiFull, 'psiFull', 30),
    minFree,
    retryAfterSeconds: Math.ceil(num(o.retryAfterSeconds, 'retryAfterSeconds', 1, 86_400)),
    lingerMs: num(o.lingerMs, 'lingerMs', 5000, 600_000),
    gfp,
  };
}

/** One reclaim pass, no waiting: reserveAsync with a zero timeout runs exactly that. */
const NO_WAIT = { timeoutMs: 0 } as const;

export class LoadShedder {
  readonly pool: Pool;
  readonly options: Readonly<Resolved>;
  readonly #ledger: BodyLedger = { pages: 0 };
  readonly #stats = {
    admitted: 0,
    admittedAtOnce: 0,
    bytes: 0,
    cutOff: 0,
    shed: Object.fromEntries(SHED_REASONS.map((r) => [r, 0])) as Record<ShedReason, number>,
  };
  readonly #onCutOff = (): void => {
    this.#stats.cutOff++;
  };

  constructor(pool: Pool, options: LoadShedOptions = {}) {
    this.pool = pool;
    this.options = Object.freeze(resolve(options));
  }

  /** Why the pool is under pressure right now (null: it is not). */
  pressure(): ShedReason | null {
    const o = this.options;
    if (o.psiSome === false && o.psiFull === false && o.minFree === false) return null;
    const p = this.pool.pressure();
    if (o.psiFull !== false && p.psi.full.avg10 > o.psiFull) return 'psi-full';
    if (o.psiSome !== false && p.psi.some.avg10 > o.psiSome) return 'psi-some';
    // This thread's page cache counts as free: its allocations drain it
    // before they would fail (and it holds what its requests just freed).
    if (o.minFree !== false && p.freePages + p.threadCachedPages < p.watermarks[o.minFree] + p.reservedPages) return 'watermark';
    return null;
  }

  /**
   * pressure() as a refusal, counted in stats(): what to answer now, or
   * null to go on. For requests that bring no body (they are not shed by
   * default: they allocate nothing) on routes that want them shed anyway.
   */
  gate(): ShedError | null {
    const why = this.pressure();
    return why === null ? null : this.#refuse(why, `memory pressure (${why})`);
  }

  /**
   * The pages for a body of `length` declared bytes, before any of it is
   * read: a PoolBody holding them (empty; fill() reads into it), or a
   * ShedError thrown (counted). See the file comment for the checks.
   */
  async claim(length: number): Promise<PoolBody> {
    const o = this.options;
    if (!Number.isSafeInteger(length) || length < 0) throw new OutOfRangeError(`length must be a non-negative integer; received ${String(length)}`);
    if (length > o.maxBodyBytes) throw this.#refuse('too-large', `body of ${length} bytes is over ${o.maxBodyBytes}`);
    const body = PoolBody.open(this.pool, this.#ledger);
    try {
      await this.#grow(body, Math.ceil(length / PAGE_SIZE), performance.now() + o.budgetMs);
    } catch (err) {
      body.free();
      throw err;
    }
    return body;
  }

  /**
   * Reads `source` into `body` (from claim(): every page is there) up to
   * its declared `length`. On failure the body is freed and the error
   * rethrown: the source closed early (IncompleteBodyError) or failed.
   */
  async fill(body: PoolBody, source: Readable | AsyncIterable<Uint8Array>, length: number): Promise<PoolBody> {
    try {
      await readInto(body, source, length, () => new OutOfRangeError(`the body is longer than its declared ${length} bytes`), null);
      if (body.size !== length) throw new OutOfRangeError(`the body ended after ${body.size} of its declared ${length} bytes`);
    } catch (err) {
      body.free();
      throw err;
    }
    return this.#admitted(body);
  }

  /**
   * Reads a body of `length` bytes (undefined: unknown, read until the
   * source ends) from `source` into pool pages: claim() then fill() for a
   * declared length, page by page otherwise. Throws ShedError when the
   * request must be refused; the body's pages are then already freed and
   * the source paused, not destroyed, so that the refusal can still be
   * answered on its connection (refuse() drains it). `checkPressure`:
   * apply gate() first, as for a request without a body (default false).
   */
  async admit(length: number | undefined, source: Readable | AsyncIterable<Uint8Array>, options: { checkPressure?: boolean } = {}): Promise<PoolBody> {
    if (options.checkPressure === true) {
      const refused = this.gate();
      if (refused !== null) throw refused;
    }
    if (length !== undefined) return this.fill(await this.claim(length), source, length);
    const o = this.options;
    const deadline = performance.now() + o.budgetMs;
    const body = PoolBody.open(this.pool, this.#ledger);
    try {
      await readInto(
        body,
        source,
        o.maxBodyBytes,
        () => this.#refuse('too-large', `body is over ${o.maxBodyBytes} bytes`),
        (n) => this.#grow(body, n, deadline),
      );
    } catch (err) {
      body.free();
      throw err;
    }
    return this.#admitted(body);
  }

  /**
   * Refuses a request the way the shedder does: 503 with Retry-After, or
   * 413, on a connection that stays open while the rest of the body is
   * drained (at most lingerMs). `why` is a reason (counted now) or a
   * ShedError from admit/claim/fill/gate (already counted). Returns the
   * error answered. A failed cache.set/adopt is one line:
   *   if (!cache.adopt(key, body)) return shed.refuse(res, 'no-memory');
   */
  refuse(target: RefusalTarget, why: ShedReason | ShedError, message?: string): ShedError {
    let err: ShedError;
    if (why instanceof ShedError) {
      err = why;
    } else {
      if (!SHED_REASONS.includes(why)) throw new OutOfRangeError(`reason must be one of ${SHED_REASONS.join(', ')}; received ${String(why)}`);
      err = this.#refuse(why, message ?? (why === 'no-memory' ? 'no memory to keep the value' : `refused (${why})`));
    }
    answerRefusal(target, err, this.options.lingerMs, this.#onCutOff);
    return err;
  }

  /**
   * What refuse() does with a refused request's unread body, for answers
   * sent another way (a framework's error path): read and discard it on
   * the open connection, and close the connection if the client is still
   * sending lingerMs after `res` went out (counted in stats().cutOff).
   * Call it before the answer is sent.
   */
  drain(req: IncomingMessage, res: ServerResponse): void {
    drainAfter(req, res, this.options.lingerMs, this.#onCutOff);
  }

  stats(): LoadShedStats {
    const s = this.#stats;
    return { admitted: s.admitted, admittedAtOnce: s.admittedAtOnce, bytes: s.bytes, bodyPages: this.#ledger.pages, cutOff: s.cutOff, shed: { ...s.shed } };
  }

  #admitted(body: PoolBody): PoolBody {
    this.#stats.admitted++;
    this.#stats.bytes += body.size;
    return body;
  }

  /** Adds `n` pages to the body (steps 2-4 of the file comment), before `deadline`; ShedError when it cannot. */
  async #grow(body: PoolBody, n: number, deadline: number): Promise<void> {
    if (n <= 0) return;
    const pool = this.pool;
    const o = this.options;
    const total = pool.totalPages;
    if (body.pages.length + n > total) {
      throw this.#refuse('too-large', `body needs ${body.pages.length + n} pages; the pool has ${total}`);
    }
    // 2. Free memory now: one native call, all or none.
    let pages = takeBulk(pool, n);
    let atOnce = true;
    if (pages === null && o.policy !== 'nowait') {
      const why = this.pressure();
      if (why === null) {
        // 3 and 4: reclaim, then wait for frees, within the budget.
        pages = await this.#wait(n, deadline);
        atOnce = false;
      } else {
        // 3 alone under pressure: reclaim caches, but wait for nobody.
        pages = await this.#reclaimFor(n);
        if (pages === null) throw this.#refuse(why, `${n} pages are not free and the pool is under pressure (${why})`);
      }
    }
    if (pages === null) throw this.#refuse('budget', `could not get ${n} pages within ${o.budgetMs} ms (${o.policy})`);
    body.addPages(pages);
    if (atOnce) this.#stats.admittedAtOnce++;
  }

  /**
   * Steps 3 and 4 by policy, before `deadline`: the pages, or null. The
   * allocator's own loops do both: a reservation (or an allocation) that
   * cannot be had at once runs direct reclaim — the caches' shrinkers —
   * and goes round again as long as reclaim frees something, and only then
   * waits for frees.
   */
  async #wait(n: number, deadline: number): Promise<Page[] | null> {
    const pool = this.pool;
    const o = this.options;
    const got: Page[] = [];
    try {
      if (o.policy === 'loop') {
        while (got.length < n) got.push(await pool.allocAsync(o.gfp, 0, { timeoutMs: left(deadline) }));
        return got;
      }
      for (;;) {
        // All or nothing: a reservation, then its pages in one call. Given
        // back before the call (a bulk allocation takes nothing from a
        // reservation); another thread can take them in between, rarely:
        // then again, within the budget.
        (await pool.reserveAsync(n, { timeoutMs: left(deadline) })).release();
        const pages = takeBulk(pool, n);
        if (pages !== null) return pages;
        if (left(deadline) === 0) return null;
      }
    } catch (err) {
      if (got.length > 0) pool.freeBulk(got);
      if (isOutOfMemory(err)) return null;
      throw err;
    }
  }

  /**
   * Step 3 alone, for a pool under pressure: one reclaim pass at a time (a
   * reservation that may not wait: tryWatermark, direct reclaim,
   * tryWatermark), and the pages as soon as they are there. Stops when a
   * pass frees nothing: what is left is held by someone who is not a cache.
   */
  async #reclaimFor(n: number): Promise<Page[] | null> {
    const pool = this.pool;
    let before = -1;
    for (;;) {
      const s = pool.pressure();
      const free = s.freePages + s.threadCachedPages;
      if (free <= before) return null;
      before = free;
      try {
        (await pool.reserveAsync(n, NO_WAIT)).release();
      } catch (err) {
        if (!isOutOfMemory(err)) throw err;
        continue;
      }
      const pages = takeBulk(pool, n);
      if (pages !== null) return pages;
    }
  }

  #refuse(reason: ShedReason, message: string): ShedError {
    this.#stats.shed[reason]++;
    return new ShedError(reason, message, this.options.retryAfterSeconds);
  }
}

/**
 * n order-0 pages from free memory in one call, or null: never reclaims,
 * never waits. Asked only when the pages look free (above MIN, the depth a
 * NOWAIT allocation may go, plus what reservations hold): a refusal is an
 * exception, and exceptions are what made a busy pool slow to admit.
 */
function takeBulk(pool: Pool, n: number): Page[] | null {
  const p = pool.pressure();
  if (p.freePages + p.threadCachedPages - n < p.watermarks.min + p.reservedPages) return null;
  try {
    return pool.allocBulk(n, GFP.NOWAIT);
  } catch (err) {
    if (err instanceof AllocError) return null;
    throw err;
  }
}

function left(deadline: number): number {
  return Math.max(0, deadline - performance.now());
}

/** The errors that mean "not within the budget": no memory, a wait the thread may not do, a timeout. */
function isOutOfMemory(err: unknown): boolean {
  return err instanceof AllocError || err instanceof WouldBlockError || (err as Error)?.name === 'TimeoutError';
}

