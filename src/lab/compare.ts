/**
 * `nofail compare`: every chosen policy on the same workload mix, seed and
 * options, one after the other — each with a fresh pool and fresh workers;
 * only the process is shared. An abort (Ctrl-C) stops the policy running,
 * keeps it as a partial result, and runs no more.
 */
import { type PoolStats } from '../index.js';
import type { Board } from './board.js';
import type { PolicyResult, Sample, SlotRecord } from './collect.js';
import { type LabOptions, shapeOf } from './config.js';
import { policyByName } from './policies/index.js';
import { runPolicy } from './run.js';

export interface CompareHooks {
  signal?: AbortSignal;
  onPolicyStart?(index: number, count: number, name: string): void;
  onSample?(name: string, sample: Sample, stats: PoolStats, board: Board, slots: readonly SlotRecord[]): void;
  onPolicyEnd?(result: PolicyResult): void;
}

export async function runCompare(options: LabOptions, hooks: CompareHooks = {}): Promise<{ results: PolicyResult[]; partial: boolean }> {
  const shape = shapeOf(options);
  const results: PolicyResult[] = [];
  for (const [i, name] of options.policies.entries()) {
    if (hooks.signal?.aborted) break;
    const policy = policyByName(name);
    if (policy === undefined) throw new Error(`unknown policy '${name}'`);
    hooks.onPolicyStart?.(i, options.policies.length, name);
    const result = await runPolicy(policy, options, shape, {
      signal: hooks.signal,
      onSample: (s, st, board, slots) => hooks.onSample?.(name, s, st, board, slots),
    });
    results.push(result);
    hooks.onPolicyEnd?.(result);
  }
  const partial = hooks.signal?.aborted === true || results.length < options.policies.length;
  return { results, partial };
}
