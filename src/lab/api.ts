/**
 * The policy lab's interface: what a policy and a workload are. The
 * built-in policies (policies/) and workloads (workloads/) are written
 * against it, and so is a user's module:
 *
 *   nofail compare --policy ./my-policy.mjs      your policy beside the built-in ones
 *   nofail stress --policy ./my-policy.mjs --workload fs,./my-workload.mjs,hog
 *
 * A module's default export (or its export named `policy` / `workload`) is
 * one LabPolicy or LabWorkload object; examples/custom-policy.mjs and
 * examples/custom-workload.mjs are small complete ones. The lab loads the
 * module on the main thread (to check it) and in every worker thread (where
 * its hooks run), so it must not depend on state shared between threads
 * other than what `setup()` hands over. It uses nofail's public API
 * (`import { GFP } from 'nofail'`) and what the lab passes to its hooks —
 * nothing else of the lab.
 *
 * Errors: a hook that throws fails the run it belongs to; the report names
 * the module, the hook and the stack, and `compare` goes on with the other
 * policies. Two things are not errors: `ctx.refuse()` in a policy (the
 * transaction could not begin, nothing changed), and an ENOMEM (code
 * 'ENOMEM') escaping a workload's run() (the operation failed).
 */
import type { Page, Pool, PoolOptions } from '../index.js';
import type { Shape } from './config.js';

export type { Shape } from './config.js';

/** What one operation achieved: 'ok' did its work, 'failed' failed part-way, 'refused' never began. */
export type Outcome = 'ok' | 'failed' | 'refused';

// ───────────────────────────── policies ─────────────────────────────

/**
 * A policy: the system it runs on (the pool's `behavior` and OOM killer:
 * the allocator side) and how the filesystem allocates inside a
 * transaction (the caller side). The filesystem asks its policy for:
 *   transaction(worst, body)  what happens before the fs lock is taken and
 *                             after the commit: reserve, preallocate, nothing
 *   tx.cache(willAlloc, fn)   one page-cache call (it may allocate a page);
 *                             fn gets the GFP mask to use
 *   tx.logPage()/freeLog()    a transaction-private page pinned until commit
 */
export interface LabPolicy {
  /** Lower case, digits and dashes; not a built-in policy's name. */
  readonly name: string;
  /** One line: what the policy does. */
  readonly summary: string;
  /** The system it runs on, in words (kernel version, OOM killer). */
  readonly system: string;
  /**
   * The pool's behavior and OOM killer. The lab scales the OOM timers
   * (reaperDelayMs, default 2000, and victimTimeoutMs) by --timescale.
   */
  readonly pool: Pick<PoolOptions, 'behavior' | 'oom'>;
  /** Main thread, on the fresh pool, before the workers start. */
  setup?(ctx: PolicySetupContext): PolicySetup;
  /** Worker thread: the filesystem's allocation strategy for this worker. */
  fs(ctx: FsContext): FsPolicy;
}

/** The keys a LabPolicy may have: any other is a mistake the lab reports. */
export const LAB_POLICY_KEYS = ['name', 'summary', 'system', 'pool', 'setup', 'fs'] as const;

export interface PolicySetupContext {
  readonly pool: Pool;
  readonly shape: Shape;
  /** Workers that run fs transactions (the fs workload's and the hog's). */
  readonly fsWorkers: number;
}

export interface PolicySetup {
  /** Sent to every worker as FsContext.shared (structured-clonable: a handle, numbers). */
  shared?: unknown;
  /** Pages set aside on the main thread's side (a mempool's elements), sampled for the report. */
  idle?(): number;
  /** At the end of the run. */
  close?(): void;
}

export interface FsContext {
  readonly pool: Pool;
  /** What the policy's setup() shared with the workers. */
  readonly shared: unknown;
  /** Who allocates, for canaries and reports: the workload and worker index ('fs-0'). */
  readonly caller: string;
  /** True once this worker was OOM-killed or the run is stopping: waits should give up (then refuse). */
  interrupted(): boolean;
  /** Throws the lab's "refused" error: the transaction could not begin and nothing was changed. */
  refuse(reason: string): never;
}

export interface FsPolicy {
  /**
   * Runs one transaction that allocates at most `worst` pages: whatever the
   * policy does first (it may refuse), then body(tx) — which takes the fs
   * lock, allocates through tx and commits — then whatever it does after.
   */
  transaction<T>(worst: number, body: (tx: TxAlloc) => T): T;
  /** Pages set aside by the policy in this worker and not used yet. */
  idle(): number;
}

export interface TxAlloc {
  /** One page-cache call; `willAllocate` says whether it misses (and so takes a page). */
  cache<T>(willAllocate: boolean, fn: (gfp: number) => T): T;
  /** A transaction-private page, freed with freeLog() at commit. */
  logPage(): Page;
  freeLog(page: Page): void;
}

// ───────────────────────────── workloads ─────────────────────────────

/**
 * A workload: what one kind of worker does. Its operations are planned
 * from a random stream seeded by (seed, worker, op index) — so the same
 * --seed issues the same operations on any machine — and issued on a
 * schedule: op i is due at startMs + i × intervalMs (ms from the start of
 * the run); a late op is issued at once and its latency counts from when
 * it was due.
 */
export interface LabWorkload<Op = unknown> {
  /** Lower case, digits and dashes; not a built-in workload's name. Workers are named `${name}-${index}`. */
  readonly name: string;
  /** One line: what it does. */
  readonly summary: string;
  /** Its task's oomScoreAdj (−1000..1000; default 0). */
  readonly oomScoreAdj?: number;
  /** Its pace, and when its first op is due (default 0). */
  schedule(shape: Shape): { intervalMs: number; startMs?: number };
  /** Operation i: a pure function of `rng` (and i, shape). JSON-serialisable: the run's digest is taken over it. */
  plan(rng: LabRandom, i: number, shape: Shape): Op;
  /** Worker thread: set up (files, shrinkers) and return what runs the operations. */
  start(ctx: WorkloadContext): WorkloadRunner<Op>;
}

/** The keys a LabWorkload may have. */
export const LAB_WORKLOAD_KEYS = ['name', 'summary', 'oomScoreAdj', 'schedule', 'plan', 'start'] as const;

export interface WorkloadRunner<Op = unknown> {
  /** One operation. May return a promise (the worker's event loop runs meanwhile). */
  run(op: Op): Outcome | Promise<Outcome>;
  /** Pages set aside by the policy and not used yet (the report's `idle`); default 0. */
  idle?(): number;
  /** At the end of the run (not after an OOM kill): give back what it holds. */
  close?(): void;
}

/** A random stream: the same (seed, worker, op index) gives the same numbers. */
export interface LabRandom {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [lo, hi]. */
  int(lo: number, hi: number): number;
  chance(p: number): boolean;
}

export interface WorkloadContext {
  readonly pool: Pool;
  /** The run's filesystem, shared by every worker: its lock, the policy, the read-only flag. */
  readonly fs: LabFilesystem;
  readonly shape: Shape;
  /** This worker's index (its slot in the run), and its name (`${workload}-${index}`). */
  readonly worker: number;
  readonly name: string;
  /** A directory for this run's files (a tmpfs when there is one); removed at the end. */
  readonly dir: string;
  /**
   * Runs one call that allocates `pages` pages (0: may allocate, not
   * counted): it is timed into the allocation latency histogram, counted,
   * and shown as in flight while it runs (how a stuck allocation is seen).
   */
  timed<T>(fn: () => T, pages?: number): T;
  /** Pages this worker holds now (the report's per-workload peak). */
  held(pages: number): void;
  /** True once this worker was OOM-killed: it stops after the operation in progress. */
  killed(): boolean;
  /** True once the run is stopping. */
  stopping(): boolean;
}

export interface LabFilesystem {
  /**
   * One transaction of at most `worst` pages, under the policy and the fs
   * lock. 'failed' when an allocation inside failed (ENOMEM): the
   * filesystem then goes read-only (ext4's errors=remount-ro) and refuses
   * transactions until it is remounted after a cooldown. 'refused' when it
   * is read-only or the policy could not begin.
   */
  transaction(worst: number, body: (tx: TxAlloc) => void): Outcome;
  /** The 2015 deadlock, staged (the hog uses it; see workloads/scene.ts). */
  readonly scene: LabScene;
}

/**
 * The 2015 TIF_MEMDIE deadlock by construction, once per run: a worker cues
 * it; the next fs transaction to take the fs lock then holds it, before it
 * allocates anything, until the cueing worker's next transaction() is about
 * to block on that lock. Whatever the cueing worker does in between (the hog
 * takes the rest of memory) happens while the lock is held.
 */
export interface LabScene {
  /**
   * Waits until a transaction holds the fs lock for this worker; false if
   * the scene was played already, this worker is killed or the run stops
   * first. After true, this worker's next transaction() releases the holder
   * just before it blocks on the fs lock (or, if it never reaches the lock,
   * when it ends).
   */
  cue(): Promise<boolean>;
}

/** The error ctx.refuse() throws: a transaction that could not begin, so the filesystem stays writable. */
export class Refused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Refused';
  }
}
