/**
 * `nofail compare` (and `stress`, with one policy): every chosen policy on
 * the same workload mix and options, `repeat` times — round r runs every
 * policy with seed + r, so each round compares the policies on the same
 * operations, and the rounds give each policy's spread. Each run has a
 * fresh pool and fresh workers; only the process is shared.
 *
 * A policy whose hook threw is marked failed in that run and not run
 * again (its next runs would fail the same way); the others go on. An
 * abort (Ctrl-C) stops the run in progress, keeps it as a partial result,
 * and runs no more.
 */
import { type PoolStats } from '../index.js';
import type { Board } from './board.js';
import type { PolicyResult, Sample, SlotRecord } from './collect.js';
import { type LabOptions, seedOf, shapeOf } from './config.js';
import type { Catalog } from './modules.js';
import { runPolicy } from './run.js';

export interface RunInfo {
  /** This run's place among all of them (0-based), and how many there are. */
  index: number;
  count: number;
  policy: string;
  /** The round (0-based) and how many; the seed it runs with. */
  round: number;
  rounds: number;
  seed: number;
}

export interface CompareHooks {
  signal?: AbortSignal;
  onRunStart?(run: RunInfo): void;
  onSample?(name: string, sample: Sample, stats: PoolStats, board: Board, slots: readonly SlotRecord[]): void;
  onRunEnd?(result: PolicyResult, run: RunInfo): void;
}

/** Every run, in the order they ran (round by round); partial when interrupted. */
export async function runCompare(options: LabOptions, catalog: Catalog, hooks: CompareHooks = {}): Promise<{ results: PolicyResult[]; partial: boolean }> {
  const results: PolicyResult[] = [];
  const failed = new Set<string>();
  const count = options.policies.length * options.repeat;
  let index = 0;
  let partial = false;
  for (let round = 0; round < options.repeat; round++) {
    const seed = seedOf(options, round);
    const shape = shapeOf({ ...options, seed });
    for (const name of options.policies) {
      if (hooks.signal?.aborted) {
        partial = true;
        break;
      }
      const info: RunInfo = { index: index++, count, policy: name, round, rounds: options.repeat, seed };
      if (failed.has(name)) continue;
      const policy = catalog.policies.get(name);
      if (policy === undefined) throw new Error(`unknown policy '${name}'`);
      hooks.onRunStart?.(info);
      const result = await runPolicy(policy, catalog, options, shape, {
        signal: hooks.signal,
        onSample: (s, st, board, slots) => hooks.onSample?.(name, s, st, board, slots),
      });
      results.push(result);
      if (result.failure !== null) failed.add(name);
      partial ||= result.partial;
      hooks.onRunEnd?.(result, info);
    }
  }
  return { results, partial: partial || hooks.signal?.aborted === true };
}
