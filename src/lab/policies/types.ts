/**
 * What a policy is: the pool options it runs the system with (allocator
 * side: behavior, OOM killer) and how the filesystem allocates inside a
 * transaction (caller side). A policy uses only nofail's public API; the
 * library has no special case for any of them.
 *
 * The filesystem asks its policy for three things (FsPolicy):
 *   transaction(worst, body)  what happens before the fs lock is taken and
 *                             after the commit: reserve, preallocate, nothing
 *   tx.cache(willAlloc, fn)   one page-cache call (it may allocate a page);
 *                             fn gets the GFP mask to use
 *   tx.logPage()/freeLog()    a transaction-private page pinned until commit
 */
import { type Page, type Pool, type PoolOptions } from '../../index.js';
import type { Shape } from '../config.js';

export interface FsContext {
  readonly pool: Pool;
  /** What the policy's main-thread setup shared with the workers. */
  readonly shared: unknown;
  /** True once this worker's task was OOM-killed or the run is stopping: waits should give up. */
  interrupted(): boolean;
  /** Who allocates, for canaries: the workload and worker index. */
  readonly caller: string;
}

export interface TxAlloc {
  cache<T>(willAllocate: boolean, fn: (gfp: number) => T): T;
  logPage(): Page;
  freeLog(page: Page): void;
}

export interface FsPolicy {
  /** Runs one transaction that allocates at most `worst` pages. Throws Refused when it cannot begin. */
  transaction<T>(worst: number, body: (tx: TxAlloc) => T): T;
  /** Pages set aside by the policy in this thread and not used yet. */
  idle(): number;
}

export interface PolicySetup {
  /** Sent to every worker as FsContext.shared (structured-clonable). */
  shared?: unknown;
  /** Pages set aside on the main thread's side (a mempool's elements). */
  idle?(): number;
  close?(): void;
}

export interface Policy {
  readonly name: string;
  /** One line: what the policy does. */
  readonly summary: string;
  /** The system it runs on, in words (kernel version, OOM killer). */
  readonly system: string;
  readonly pool: Pick<PoolOptions, 'behavior' | 'oom'>;
  /** Main thread, on the fresh pool, before the workers start. */
  setup?(pool: Pool, shape: Shape, fsWorkers: number): PolicySetup;
  /** Worker side: the filesystem's allocation strategy. */
  fs(ctx: FsContext): FsPolicy;
}

/** A transaction that could not begin: nothing was changed, so the filesystem stays writable. */
export class Refused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Refused';
  }
}
