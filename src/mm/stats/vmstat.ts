/**
 * vmstat: event counters shared by every thread of a pool (/proc/vmstat).
 * pgalloc and pgfree are counted in native code; these are the policy's.
 */
import { VMSTAT_BYTE_OFFSET, VMSTAT_SLOTS } from '../../binding/control.js';

export const VMSTAT_NAMES = [
  'allocstall',
  'alloc_slowpath',
  'alloc_fail',
  'alloc_waits',
  'pgscan_kswapd',
  'pgscan_direct',
  'pgsteal_kswapd',
  'pgsteal_direct',
  'kswapd_wakeups',
  'kswapd_runs',
  'kswapd_hopeless',
  'reclaim_retries',
  'nofail_retries',
  'drain_all_pages',
  'remote_reclaim_requests',
  'remote_reclaim_timeouts',
  'shrinker_deferred',
  'pagecache_writeback',
  'pagecache_dropped',
  'fault_injected',
  'oom_invoked',
  'oom_kill',
  'oom_reaped',
  'reserve_waits',
  'mempool_waits',
  'page_poison_errors',
  'lockdep_reports',
] as const;

export type VmStatName = (typeof VMSTAT_NAMES)[number];

const INDEX = Object.fromEntries(VMSTAT_NAMES.map((n, i) => [n, i])) as Record<VmStatName, number>;

export class VmStat {
  readonly #counters: BigInt64Array;

  constructor(control: SharedArrayBuffer) {
    this.#counters = new BigInt64Array(control, VMSTAT_BYTE_OFFSET, VMSTAT_SLOTS);
  }

  add(name: VmStatName, n = 1): void {
    Atomics.add(this.#counters, INDEX[name], BigInt(n));
  }

  get(name: VmStatName): number {
    return Number(Atomics.load(this.#counters, INDEX[name]));
  }

  read(): Record<VmStatName, number> {
    const out = {} as Record<VmStatName, number>;
    for (const n of VMSTAT_NAMES) out[n] = Number(Atomics.load(this.#counters, INDEX[n]));
    return out;
  }
}
