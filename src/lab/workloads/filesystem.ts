/**
 * The run's filesystem as one worker sees it (LabFilesystem): its lock (a
 * SharedMutex of the run, so an OOM report names it), its policy, the
 * read-only flag shared by every worker (the board), and the 2015 scene.
 *
 * A transaction that fails part-way (ENOMEM) makes the filesystem go
 * read-only — ext4's errors=remount-ro, its reaction to the 3.19 failures
 * — and every transaction is refused until it is remounted after a
 * cooldown.
 */
import type { Pool, SharedMutex } from '../../index.js';
import { type FsPolicy, type LabFilesystem, type Outcome, Refused, type TxAlloc } from '../api.js';
import { BOARD_WORD, since, SLOT_WORD, type Board } from '../board.js';
import { callHook, isEnomem } from '../hooks.js';
import type { Meter } from './meter.js';
import { lockWait, type Scene } from './scene.js';

export interface FilesystemParts {
  board: Board;
  slot: number;
  origin: number;
  cooldownMs: number;
  pool: Pool;
  mutex: SharedMutex;
  policy: FsPolicy;
  /** How errors name the policy's and the workload's modules (hooks.ts). */
  policyLabel: string;
  workloadLabel: string;
  scene: Scene;
  /** This worker's meter: the holder reports its longest allocation (scene.released). */
  meter: Meter;
}

export class Filesystem implements LabFilesystem {
  readonly #p: FilesystemParts;
  readonly scene: Scene;

  constructor(parts: FilesystemParts) {
    this.#p = parts;
    this.scene = parts.scene;
  }

  /** Pages the policy set aside in this worker and has not used. */
  idle(): number {
    return callHook(this.#p.policyLabel, 'idle', () => this.#p.policy.idle());
  }

  /** Writable now? A read-only filesystem is remounted once its cooldown has passed. */
  #writable(): boolean {
    const b = this.#p.board;
    if (b.g(BOARD_WORD.RO) === 0) return true;
    if (since(this.#p.origin) - b.g(BOARD_WORD.RO_AT) < this.#p.cooldownMs) return false;
    b.casG(BOARD_WORD.RO, 1, 0);
    return true;
  }

  #remountReadOnly(): void {
    const b = this.#p.board;
    if (b.casG(BOARD_WORD.RO, 0, 1)) {
      b.setG(BOARD_WORD.RO_AT, Math.floor(since(this.#p.origin)));
      b.addG(BOARD_WORD.RO_FLIPS);
    }
  }

  transaction(worst: number, body: (tx: TxAlloc) => void): Outcome {
    const p = this.#p;
    const scene = this.scene;
    let holder = false;
    let outcome: Outcome | 'error' = 'error';
    try {
      if (!this.#writable()) {
        outcome = 'refused';
        return outcome;
      }
      callHook(p.policyLabel, 'transaction', () =>
        p.policy.transaction(worst, (tx) => {
          // What the policy set aside and did not use, over the transaction (page·µs).
          const t0 = performance.now();
          const idle0 = this.idle();
          scene.approach();
          lockWait(p.board, p.slot, p.origin, () => p.mutex.lock(p.pool));
          try {
            holder = scene.hold((wait) => lockWait(p.board, p.slot, p.origin, wait));
            if (holder) p.meter.longestUs = 0;
            callHook(p.workloadLabel, 'run (transaction body)', () => body(guardTx(p.policyLabel, tx)), true);
          } finally {
            p.mutex.unlock();
            const idle = ((idle0 + this.idle()) / 2) * (performance.now() - t0) * 1000;
            if (idle > 0) p.board.add(p.slot, SLOT_WORD.IDLE_PUS, Math.round(idle));
          }
        }),
        true,
      );
      outcome = 'ok';
    } catch (e) {
      if (e instanceof Refused) {
        outcome = 'refused';
      } else if (isEnomem(e)) {
        this.#remountReadOnly();
        outcome = 'failed';
      } else {
        throw e;
      }
    } finally {
      scene.ended();
      if (holder) scene.released(outcome, p.meter.longestUs);
    }
    return outcome;
  }
}

/** The policy's transaction allocator, each call a hook of the policy's module. */
function guardTx(label: string, tx: TxAlloc): TxAlloc {
  return {
    cache: (willAllocate, fn) => callHook(label, 'tx.cache', () => tx.cache(willAllocate, fn), true),
    logPage: () => callHook(label, 'tx.logPage', () => tx.logPage(), true),
    freeLog: (page) => callHook(label, 'tx.freeLog', () => tx.freeLog(page)),
  };
}
