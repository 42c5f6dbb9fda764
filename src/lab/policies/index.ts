/**
 * The built-in policies, in the order `nofail compare` runs them. Each is
 * a LabPolicy (api.ts) over nofail's public API only: the interface a
 * user's policy module implements too.
 */
import type { LabPolicy } from '../api.js';
import { callerRetry } from './caller-retry.js';
import { failFast } from './fail-fast.js';
import { loop } from './loop.js';
import { mempool } from './mempool.js';
import { nofailFlag } from './nofail-flag.js';
import { oomKill, oomReaper, oomTimeout } from './oom.js';
import { preallocate } from './preallocate.js';
import { reserveTokens, reserveWatermark } from './reserve.js';

export const POLICIES: readonly LabPolicy[] = [
  failFast,
  loop,
  nofailFlag,
  callerRetry,
  oomKill,
  oomReaper,
  oomTimeout,
  mempool,
  preallocate,
  reserveWatermark,
  reserveTokens,
];

export const POLICY_NAMES = POLICIES.map((p) => p.name);
