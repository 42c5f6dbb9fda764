/**
 * Load shedding: admit a request only if its body can be had in pool pages
 * within a budget, and refuse early while the pool is under pressure.
 *
 * The order of checks is the cheap one first:
 *   1. size: a body larger than maxBodyBytes is refused (413), before any
 *      memory is touched;
 *   2. pressure: PSI some/full avg10 above its threshold, or free pages
 *      below a watermark (plus what reservations hold back) — refused (503)
 *      without trying, as @fastify/under-pressure does;
 *   3. the pages themselves, by policy, within budgetMs:
 *      - 'reserve': one reservation for the whole body (pool.reserveAsync),
 *        then the pages inside its scope: all or nothing, so a request never
 *        sits on part of its memory while it waits for the rest;
 *      - 'loop': page by page with allocAsync (GFP.KERNEL: reclaim, then
 *        wait for frees — the allocator's own "too small to fail" loop),
 *        cut off by the budget; partial holders can crowd each other out,
 *        which is what the comparison between the two is for;
 *      - 'nowait': GFP.NOWAIT, page by page: fail fast.
 *   Failing the budget is a 503 with Retry-After, never a hang.
 *
 * Nothing here blocks the event loop: every wait is an awaited promise
 * (allocAsync, reserveAsync), and synchronous allocations are made only
 * where they cannot wait (NOWAIT, or inside a reservation's scope).
 * Bodies of unknown length (chunked) are read page by page under the same
 * budget, counted from admit() (so a slow uploader spends it too); under
 * 'reserve' each chunk's pages are one reservation. A body that needs
 * more pages than the pool has is refused as too large (413).
 */
import { copyIntoPages, pageViews } from './span.js';
import { AllocError, OutOfRangeError, WouldBlockError } from '../errors.js';
import { optionKeys, validateOptions } from '../validators.js';
import { GFP, type GfpMask, type Page, PAGE_SIZE, parseSize, type Pool, type Reservation, validateGfp } from '../mm/index.js';

export type ShedPolicy = 'reserve' | 'loop' | 'nowait';
export type ShedReason = 'too-large' | 'psi-some' | 'psi-full' | 'watermark' | 'budget';

export interface LoadShedOptions {
  /** How body pages are obtained; default 'reserve'. */
  policy?: ShedPolicy;
  /** Time allowed to obtain a body's pages, ms; default 100. */
  budgetMs?: number;
  /** Larger bodies are refused with 413; default 1 MiB. */
  maxBodyBytes?: number | string;
  /** Refuse while PSI some avg10 (percent) is above this; default 60. `false` turns the check off. */
  psiSome?: number | false;
  /** Refuse while PSI full avg10 (percent) is above this; default 30. `false` turns the check off. */
  psiFull?: number | false;
  /** Refuse while free pages (with this thread's page cache) are below this watermark plus reserved pages; default 'min'. `false`: off. */
  minFree?: 'min' | 'low' | 'high' | false;
  /** Retry-After on 503 responses, seconds; default 1. */
  retryAfterSeconds?: number;
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
}

/** A refused request: `status` is what to answer (413 or 503). */
export class ShedError extends Error {
  readonly code = 'ERR_SHED' as const;
  readonly reason: ShedReason;
  readonly status: 413 | 503;
  readonly retryAfterSeconds: number;
  constructor(reason: ShedReason, message: string, retryAfterSeconds: number) {
    super(message);
    this.name = 'ShedError';
    this.reason = reason;
    this.status = reason === 'too-large' ? 413 : 503;
    this.retryAfterSeconds = retryAfterSeconds;
  }

  /** What web frameworks read (Fastify's default error handler uses both). */
  get statusCode(): 413 | 503 {
    return this.status;
  }

  get headers(): Record<string, string> {
    return this.status === 503 ? { 'retry-after': String(this.retryAfterSeconds) } : { connection: 'close' };
  }
}

/**
 * A request body in pool pages. Free it once the request is done with it
 * (free() is idempotent, so a `finally` and an error path may both call it).
 */
export class PoolBody {
  readonly #pool: Pool;
  readonly pages: Page[];
  #size = 0;
  #freed = false;

  /** @internal */
  constructor(pool: Pool, pages: Page[]) {
    this.#pool = pool;
    this.pages = pages;
  }

  /** Bytes in the body. */
  get size(): number {
    return this.#size;
  }

  get freed(): boolean {
    return this.#freed;
  }

  /** @internal Appends bytes; the pages must already be there. */
  append(chunk: Uint8Array): void {
    this.#size = copyIntoPages(this.pages, this.#size, chunk);
  }

  /** Views of the body's pages (no copy), valid until free(). */
  buffers(): Buffer[] {
    return pageViews(this.pages, this.#size);
  }

  /** The body as one fresh Buffer (a copy). */
  toBuffer(): Buffer {
    return Buffer.concat(this.buffers(), this.#size);
  }

  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    for (const p of this.pages) this.#pool.free(p);
    this.pages.length = 0;
  }

  [Symbol.dispose](): void {
    this.free();
  }
}

interface Resolved {
  policy: ShedPolicy;
  budgetMs: number;
  maxBodyBytes: number;
  psiSome: number | false;
  psiFull: number | false;
  minFree: 'min' | 'low' | 'high' | false;
  retryAfterSeconds: number;
  gfp: number;
}

const SHED_KEYS = optionKeys<LoadShedOptions>()('policy', 'budgetMs', 'maxBodyBytes', 'psiSome', 'psiFull', 'minFree', 'retryAfterSeconds', 'gfp');

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
    gfp,
  };
}

export class LoadShedder {
  readonly pool: Pool;
  readonly options: Readonly<Resolved>;
  readonly #stats: LoadShedStats = {
    admitted: 0,
    bytes: 0,
    shed: { 'too-large': 0, 'psi-some': 0, 'psi-full': 0, watermark: 0, budget: 0 },
  };

  constructor(pool: Pool, options: LoadShedOptions = {}) {
    this.pool = pool;
    this.options = Object.freeze(resolve(options));
  }

  /** Why a request would be refused right now without trying (null: it would be tried). */
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

  /** pressure() as a refusal, counted in stats(): what to answer now, or null to go on. */
  gate(): ShedError | null {
    const why = this.pressure();
    return why === null ? null : this.#refuse(why, `memory pressure (${why})`);
  }

  /**
   * Reads a body of `length` bytes (undefined: unknown, read until the
   * source ends) from `source` into pool pages. Throws ShedError when the
   * request must be refused; the body's pages are then already freed, and
   * a stream source is left undestroyed, so that the refusal can still be
   * answered on its connection (node:http discards the unread rest).
   * `checkPressure: false` skips the pressure gate (the size and the
   * budget still apply).
   */
  async admit(length: number | undefined, source: AsyncIterable<Uint8Array>, options: { checkPressure?: boolean } = {}): Promise<PoolBody> {
    const o = this.options;
    if (length !== undefined && length > o.maxBodyBytes) throw this.#refuse('too-large', `body of ${length} bytes is over ${o.maxBodyBytes}`);
    if (options.checkPressure !== false) {
      const refused = this.gate();
      if (refused !== null) throw refused;
    }
    const deadline = performance.now() + o.budgetMs;
    const body = new PoolBody(this.pool, []);
    const it = iterate(source);
    try {
      if (length !== undefined) await this.#grow(body, Math.ceil(length / PAGE_SIZE), deadline);
      for (let r = await it.next(); !r.done; r = await it.next()) {
        const chunk = r.value;
        const end = body.size + chunk.length;
        if (end > o.maxBodyBytes) throw this.#refuse('too-large', `body is over ${o.maxBodyBytes} bytes`);
        const need = Math.ceil(end / PAGE_SIZE) - body.pages.length;
        if (need > 0) await this.#grow(body, need, deadline);
        body.append(chunk);
      }
    } catch (err) {
      body.free();
      it.return?.().catch(() => {});
      throw err;
    }
    this.#stats.admitted++;
    this.#stats.bytes += body.size;
    return body;
  }

  stats(): LoadShedStats {
    return { admitted: this.#stats.admitted, bytes: this.#stats.bytes, shed: { ...this.#stats.shed } };
  }

  /** Adds `n` pages to the body by the policy, before `deadline`; ShedError('budget') when it cannot. */
  async #grow(body: PoolBody, n: number, deadline: number): Promise<void> {
    if (n <= 0) return;
    const pool = this.pool;
    const o = this.options;
    // A body larger than the pool can never be admitted.
    const total = pool.totalPages;
    if (body.pages.length + n > total) {
      throw this.#refuse('too-large', `body needs ${body.pages.length + n} pages; the pool has ${total}`);
    }
    const left = (): number => Math.max(0, deadline - performance.now());
    try {
      if (o.policy === 'nowait') {
        for (let i = 0; i < n; i++) body.pages.push(pool.alloc(GFP.NOWAIT));
      } else if (o.policy === 'loop') {
        for (let i = 0; i < n; i++) body.pages.push(await pool.allocAsync(o.gfp, 0, { timeoutMs: left() }));
      } else {
        const r: Reservation = await pool.reserveAsync(n, { timeoutMs: left() });
        try {
          // In the reservation's scope the pages are there. NOWAIT all the
          // same: should anything (ATOMIC, MEMALLOC) have taken them since,
          // the request is refused rather than a worker thread blocked.
          r.run(() => {
            for (let i = 0; i < n; i++) body.pages.push(pool.alloc(GFP.NOWAIT | GFP.RESERVE));
          });
        } finally {
          r.release();
        }
      }
    } catch (err) {
      if (err instanceof AllocError || err instanceof WouldBlockError || (err as Error)?.name === 'TimeoutError') {
        throw this.#refuse('budget', `could not get ${n} pages within ${o.budgetMs} ms (${o.policy})`);
      }
      throw err;
    }
  }

  #refuse(reason: ShedReason, message: string): ShedError {
    this.#stats.shed[reason]++;
    return new ShedError(reason, message, this.options.retryAfterSeconds);
  }
}

/**
 * The source's iterator. A Readable's is made with destroyOnReturn false:
 * leaving the loop early (a refusal) must not destroy the request, or the
 * 503 / 413 could be lost to a reset connection.
 */
function iterate(source: AsyncIterable<Uint8Array>): AsyncIterator<Uint8Array> {
  const r = source as AsyncIterable<Uint8Array> & { iterator?: (o: { destroyOnReturn: boolean }) => AsyncIterator<Uint8Array> };
  return typeof r.iterator === 'function' ? r.iterator({ destroyOnReturn: false }) : source[Symbol.asyncIterator]();
}
