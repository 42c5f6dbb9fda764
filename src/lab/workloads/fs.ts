/**
 * fs: a filesystem in miniature. Each transaction takes the filesystem's
 * SharedMutex, demand-pages metadata blocks through a PageCache over a real
 * file (GFP_NOFS reads, reclaimable), pins the few blocks it modifies and
 * copies them into log pages until commit, writes other blocks through the
 * cache, commits (the log goes back into the pinned blocks), and every few
 * commits writes the dirty pages back to the file.
 *
 * A transaction that fails part-way (ENOMEM) makes the filesystem go
 * read-only — ext4's errors=remount-ro, its reaction to the 3.19 failures —
 * and every transaction is refused until it is remounted after a cooldown.
 * The read-only flag is shared by every worker of the run (the board).
 */
import { closeSync, existsSync, ftruncateSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { GFP, PageCache, type Page, type PinnedBlock, type SharedMutex } from '../../index.js';
import { BOARD_WORD, since, SLOT_WORD } from '../board.js';
import type { FsOp, Op } from '../plan.js';
import { type FsPolicy, Refused, type TxAlloc } from '../policies/index.js';
import { isEnomem, type Outcome, type WorkerContext, type WorkloadRunner } from './context.js';

/** The filesystem as one worker sees it: its lock, its policy, the shared read-only flag. */
export class Filesystem {
  readonly #ctx: WorkerContext;
  readonly #mutex: SharedMutex;
  readonly policy: FsPolicy;

  constructor(ctx: WorkerContext, mutex: SharedMutex, policy: FsPolicy) {
    this.#ctx = ctx;
    this.#mutex = mutex;
    this.policy = policy;
  }

  /** Writable now? A read-only filesystem is remounted once its cooldown has passed. */
  #writable(): boolean {
    const b = this.#ctx.board;
    if (b.g(BOARD_WORD.RO) === 0) return true;
    if (since(this.#ctx.origin) - b.g(BOARD_WORD.RO_AT) < this.#ctx.shape.cooldownMs) return false;
    b.casG(BOARD_WORD.RO, 1, 0);
    return true;
  }

  #remountReadOnly(): void {
    const b = this.#ctx.board;
    if (b.casG(BOARD_WORD.RO, 0, 1)) {
      b.setG(BOARD_WORD.RO_AT, Math.floor(since(this.#ctx.origin)));
      b.addG(BOARD_WORD.RO_FLIPS);
    }
  }

  /** One transaction of at most `worst` pages, under the policy and the fs lock. */
  transaction(worst: number, body: (tx: TxAlloc) => void): Outcome {
    if (!this.#writable()) return 'refused';
    const pool = this.#ctx.pool;
    try {
      this.policy.transaction(worst, (tx) => {
        // What the policy set aside and did not use, over the transaction (page·µs).
        const t0 = performance.now();
        const idle0 = this.policy.idle();
        this.#mutex.lock(pool);
        try {
          body(tx);
        } finally {
          this.#mutex.unlock();
          const idle = ((idle0 + this.policy.idle()) / 2) * (performance.now() - t0) * 1000;
          if (idle > 0) this.#ctx.board.add(this.#ctx.slot, SLOT_WORD.IDLE_PUS, Math.round(idle));
        }
      });
      return 'ok';
    } catch (e) {
      if (e instanceof Refused) return 'refused';
      if (isEnomem(e)) {
        this.#remountReadOnly();
        return 'failed';
      }
      throw e;
    }
  }
}

/** The fs workload: one file and page cache per worker, transactions as planned. */
export function fsWorkload(ctx: WorkerContext, fs: Filesystem, dir: string): WorkloadRunner {
  const shape = ctx.shape.fs;
  const file = join(dir, `fs-${ctx.slot}.img`);
  if (!existsSync(file)) {
    const fd = openSync(file, 'w');
    ftruncateSync(fd, shape.fileBlocks * 4096);
    closeSync(fd);
  }
  const cache = new PageCache(ctx.pool, { file });
  const data = new Uint8Array(4096);
  const meter = ctx.meter;
  let commits = 0;

  const cached = <T>(tx: TxAlloc, block: number, fn: (gfp: number) => T): T => {
    const miss = !cache.has(block);
    return meter.timed(() => tx.cache(miss, fn), miss ? 1 : 0);
  };

  const body = (op: FsOp) => (tx: TxAlloc) => {
    const pins: PinnedBlock[] = [];
    const logs: Page[] = [];
    try {
      for (const b of op.reads) cached(tx, b, (gfp) => cache.read(b, gfp));
      for (const b of op.pins) pins.push(cached(tx, b, (gfp) => cache.pin(b, gfp)));
      for (const pin of pins) {
        const log = meter.timed(() => tx.logPage());
        logs.push(log);
        log.bytes.set(pin.bytes);
        log.bytes[0] = (log.bytes[0]! + 1) & 0xff;
      }
      data.fill(commits & 0xff);
      for (const b of op.writes) cached(tx, b, (gfp) => cache.write(b, data, 0, gfp));
      // Commit: the log goes back into the pinned blocks (resident: no allocation).
      for (let i = 0; i < pins.length; i++) cache.write(pins[i]!.block, logs[i]!.bytes, 0, GFP.NOFS);
    } finally {
      for (const p of pins) p.release();
      for (const l of logs) tx.freeLog(l);
    }
  };

  return {
    intervalMs: shape.intervalMs,
    run(op: Op): Outcome {
      const outcome = fs.transaction(shape.worstCase, body(op as FsOp));
      if (outcome === 'ok' && ++commits % shape.writebackEvery === 0) cache.writeback();
      const s = cache.stats;
      ctx.board.setHeld(ctx.slot, s.cached + s.nodes);
      return outcome;
    },
    idle: () => fs.policy.idle(),
    close: () => cache.close(),
  };
}
