/** The policies, in the order `nofail compare` runs them. */
import { callerRetry } from './caller-retry.js';
import { failFast } from './fail-fast.js';
import { loop } from './loop.js';
import { mempool } from './mempool.js';
import { nofailFlag } from './nofail-flag.js';
import { oomKill, oomReaper, oomTimeout } from './oom.js';
import { preallocate } from './preallocate.js';
import { reserveTokens, reserveWatermark } from './reserve.js';
import type { Policy } from './types.js';

export const POLICIES: readonly Policy[] = [
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

export function policyByName(name: string): Policy | undefined {
  return POLICIES.find((p) => p.name === name);
}

export { type FsContext, type FsPolicy, type Policy, type PolicySetup, Refused, type TxAlloc } from './types.js';
