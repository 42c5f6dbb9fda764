/**
 * Option values of the nofail CLI, checked up front. Each parser throws
 * commander's InvalidArgumentError with what was expected; commander adds
 * the option's name ("option '--duration <T>' argument 'x' is invalid").
 * A limit that depends on another option (workers against the mix) is
 * stated here and in the help before main.ts enforces it.
 */
import { InvalidArgumentError } from 'commander';
import { BUILTIN_WORKLOAD_NAMES, LIMITS } from '../lab/config.js';
import { isModuleRef } from '../lab/modules.js';
import { POLICY_NAMES } from '../lab/policies/index.js';
import { parseSize } from '../index.js';

const MIN_POOL = 4 * 1024 * 1024;
const MAX_POOL = 1024 * 1024 * 1024;

/** What --workers accepts, in words: the same sentence in the help and in the error. */
export const WORKERS_LIMIT = `an integer from ${LIMITS.workers.min} to ${LIMITS.workers.max}, and at least one per workload in the mix (${BUILTIN_WORKLOAD_NAMES.length} with the default ${BUILTIN_WORKLOAD_NAMES.join(',')})`;

export function parseDuration(v: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(v);
  if (!m) throw new InvalidArgumentError("expected a duration like '2s', '1500ms' or '1m' (a plain number is seconds).");
  const ms = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000);
  if (ms < LIMITS.durationMs.min || ms > LIMITS.durationMs.max) throw new InvalidArgumentError('expected a duration from 500ms to 10m.');
  return Math.round(ms);
}

function integer(v: string, min: number, max: number): number | null {
  const n = Number(v);
  return /^\s*\d+\s*$/.test(v) && n >= min && n <= max ? n : null;
}

export function parseWorkers(v: string): number {
  const n = integer(v, LIMITS.workers.min, LIMITS.workers.max);
  if (n === null) throw new InvalidArgumentError(`expected ${WORKERS_LIMIT}.`);
  return n;
}

export function parseRepeat(v: string): number {
  const n = integer(v, LIMITS.repeat.min, LIMITS.repeat.max);
  if (n === null) throw new InvalidArgumentError(`expected an integer from ${LIMITS.repeat.min} to ${LIMITS.repeat.max}.`);
  return n;
}

export function parsePool(v: string): number {
  let bytes: number;
  try {
    bytes = parseSize(v, 'pool');
  } catch (e) {
    throw new InvalidArgumentError(`expected a size like '32MiB' or '64m' (${(e as Error).message}).`);
  }
  if (bytes < MIN_POOL || bytes > MAX_POOL) throw new InvalidArgumentError('expected a size from 4MiB to 1GiB.');
  return bytes;
}

export function parseSeed(v: string): number {
  const n = integer(v, 0, 2 ** 32 - 1);
  if (n === null) throw new InvalidArgumentError('expected an integer from 0 to 4294967295.');
  return n;
}

export function parseTimeScale(v: string): number {
  const n = Number(v);
  if (!(n > 0 && n <= 10)) throw new InvalidArgumentError('expected a number above 0 and at most 10.');
  return n;
}

function list(v: string): string[] {
  return v.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** Built-in names, or paths of modules (a slash, or a .js/.mjs ending: loaded later, and checked then). */
function namesOrModules(v: string, builtins: readonly string[], kind: string): string[] {
  const names = list(v);
  const bad = names.filter((n) => !isModuleRef(n) && !builtins.includes(n));
  if (names.length === 0 || bad.length > 0) {
    throw new InvalidArgumentError(`${bad.length ? `unknown ${kind} ${bad.map((b) => `'${b}'`).join(', ')}; ` : ''}choose from ${builtins.join(', ')}, or give a module's path (./my-${kind}.mjs).`);
  }
  return [...new Set(names)];
}

export function parsePolicies(v: string): string[] {
  return namesOrModules(v, POLICY_NAMES, 'policy');
}

export function parsePolicy(v: string): string {
  const names = namesOrModules(v, POLICY_NAMES, 'policy');
  if (names.length !== 1) throw new InvalidArgumentError('expected one policy (a name or a module path).');
  return names[0]!;
}

/** --policy on compare: repeatable, each a module path (or a built-in name) added to the policies run. */
export function collectPolicy(v: string, previous: string[] = []): string[] {
  return [...previous, parsePolicy(v)];
}

export function parseWorkloads(v: string): string[] {
  return namesOrModules(v, BUILTIN_WORKLOAD_NAMES, 'workload');
}
