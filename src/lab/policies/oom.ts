/**
 * The OOM-killer policies on Linux 4.0's looping allocator: they differ in
 * what happens when the victim does not exit — because it is blocked on a
 * lock held by an allocation that loops waiting for the victim's memory
 * (Tetsuo Handa's TIF_MEMDIE stall).
 *   oom-kill     wait for the victim, forever (4.0)
 *   oom-reaper   take the victim's memory after 2 s and move on (4.6)
 *   oom-timeout  move on to another victim after 5 s (Weiner's 2015 proposal)
 */
import { plainFs } from './common.js';
import type { LabPolicy } from '../api.js';

export const oomKill: LabPolicy = {
  name: 'oom-kill',
  summary: 'OOM killer; waits for its victim to exit before choosing another',
  system: 'linux-4.0, OOM killer without reaper',
  pool: { behavior: 'linux-4.0', oom: { reaper: false } },
  fs: (ctx) => plainFs(ctx),
};

export const oomReaper: LabPolicy = {
  name: 'oom-reaper',
  summary: "OOM killer with the reaper: a victim that has not exited after 2 s loses its pages",
  system: 'linux-4.0, OOM killer with reaper (4.6)',
  pool: { behavior: 'linux-4.0', oom: { reaper: true } },
  fs: (ctx) => plainFs(ctx),
};

export const oomTimeout: LabPolicy = {
  name: 'oom-timeout',
  summary: 'OOM killer that chooses another victim when one has not exited within 5 s',
  system: 'linux-4.0, OOM killer, victim timeout 5 s',
  pool: { behavior: 'linux-4.0', oom: { reaper: false, victimTimeoutMs: 5000 } },
  fs: (ctx) => plainFs(ctx),
};
