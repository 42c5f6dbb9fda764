/**
 * loop: Linux 4.0's revert (cc87317726f8) — "too small to fail": a small
 * allocation loops until memory comes back. No OOM killer here, so nothing
 * makes memory come back but reclaim and frees: Linus's "complete hang".
 */
import { plainFs } from './common.js';
import type { LabPolicy } from '../api.js';

export const loop: LabPolicy = {
  name: 'loop',
  summary: 'plain GFP_NOFS; small allocations loop until memory is freed, nobody is killed',
  system: 'linux-4.0 (too small to fail), no OOM killer',
  pool: { behavior: 'linux-4.0', oom: false },
  fs: (ctx) => plainFs(ctx),
};
