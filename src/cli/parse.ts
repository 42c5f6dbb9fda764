/**
 * Option values of the nofail CLI, checked up front. Each parser throws
 * commander's InvalidArgumentError with what was expected; commander adds
 * the option's name ("option '--duration <T>' argument 'x' is invalid").
 */
import { InvalidArgumentError } from 'commander';
import { WORKLOADS, type Workload } from '../lab/config.js';
import { POLICY_NAMES } from '../lab/policies/index.js';
import { parseSize } from '../index.js';

const MIN_POOL = 4 * 1024 * 1024;
const MAX_POOL = 1024 * 1024 * 1024;

export function parseDuration(v: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(v);
  if (!m) throw new InvalidArgumentError("expected a duration like '6s', '1500ms' or '1m' (a plain number is seconds).");
  const ms = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000);
  if (ms < 500 || ms > 600_000) throw new InvalidArgumentError('expected a duration from 500ms to 10m.');
  return Math.round(ms);
}

export function parseWorkers(v: string): number {
  const n = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || n < 1 || n > 32) throw new InvalidArgumentError('expected an integer from 1 to 32.');
  return n;
}

export function parsePool(v: string): number {
  let bytes: number;
  try {
    bytes = parseSize(v, 'pool');
  } catch {
    throw new InvalidArgumentError("expected a size like '32MiB' or '64m'.");
  }
  if (bytes < MIN_POOL || bytes > MAX_POOL) throw new InvalidArgumentError('expected a size from 4MiB to 1GiB.');
  return bytes;
}

export function parseSeed(v: string): number {
  const n = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || n > 2 ** 32 - 1) throw new InvalidArgumentError('expected an integer from 0 to 4294967295.');
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

export function parsePolicies(v: string): string[] {
  const names = list(v);
  const bad = names.filter((n) => !POLICY_NAMES.includes(n));
  if (names.length === 0 || bad.length > 0) {
    throw new InvalidArgumentError(`${bad.length ? `unknown policy ${bad.map((b) => `'${b}'`).join(', ')}; ` : ''}choose from ${POLICY_NAMES.join(', ')}.`);
  }
  return [...new Set(names)];
}

export function parsePolicy(v: string): string {
  if (!POLICY_NAMES.includes(v.trim())) throw new InvalidArgumentError(`unknown policy '${v}'; choose from ${POLICY_NAMES.join(', ')}.`);
  return v.trim();
}

export function parseWorkloads(v: string): Workload[] {
  const names = list(v);
  const bad = names.filter((n) => !(WORKLOADS as readonly string[]).includes(n));
  if (names.length === 0 || bad.length > 0) {
    throw new InvalidArgumentError(`${bad.length ? `unknown workload ${bad.map((b) => `'${b}'`).join(', ')}; ` : ''}choose from ${WORKLOADS.join(', ')}.`);
  }
  return [...new Set(names)] as Workload[];
}
