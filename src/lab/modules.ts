/**
 * Policies and workloads by name: the built-in ones, and users' modules
 * loaded from a path (`--policy ./my-policy.mjs`, `--workload ./w.mjs`).
 * A module is loaded on the main thread to check it (its shape, before
 * anything runs) and again in each worker thread that runs it; its hooks
 * are called through hooks.ts.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { InvalidArgTypeError, InvalidArgValueError } from '../index.js';
import { LAB_POLICY_KEYS, LAB_WORKLOAD_KEYS, type LabPolicy, type LabWorkload } from './api.js';
import { LabModuleError } from './hooks.js';
import { POLICIES } from './policies/index.js';
import { WORKLOADS } from './workloads/index.js';

export { LabModuleError };

/** A policy or workload and where it came from. */
export interface Loaded<T> {
  value: T;
  /** The module's absolute path; null for a built-in one. */
  path: string | null;
  /** How reports and errors name it: the path, or `built-in:<name>`. */
  label: string;
}

/** A command-line entry that names a module rather than a built-in: it has a slash or a .js/.mjs/.cjs ending. */
export function isModuleRef(ref: string): boolean {
  return /[\\/]/.test(ref) || /\.[cm]?js$/.test(ref);
}

const NAME = /^[a-z0-9][a-z0-9-]*$/;

function checkKeys(x: Record<string, unknown>, keys: readonly string[], where: string): void {
  for (const k of Object.keys(x)) {
    if (x[k] !== undefined && !keys.includes(k)) {
      throw new InvalidArgValueError(`${where} has an unknown key '${k}' (valid: ${keys.join(', ')})`);
    }
  }
}

function checkString(x: Record<string, unknown>, key: string, where: string): void {
  if (typeof x[key] !== 'string' || x[key] === '') throw new InvalidArgTypeError(`${where}: '${key}' must be a non-empty string`);
}

function checkFunction(x: Record<string, unknown>, key: string, where: string, optional = false): void {
  if (optional && x[key] === undefined) return;
  if (typeof x[key] !== 'function') throw new InvalidArgTypeError(`${where}: '${key}' must be a function`);
}

function checkName(x: Record<string, unknown>, where: string, builtins: readonly string[], kind: string): void {
  checkString(x, 'name', where);
  const name = x.name as string;
  if (!NAME.test(name)) throw new InvalidArgValueError(`${where}: name '${name}' must be lower case letters, digits and dashes`);
  if (builtins.includes(name)) throw new InvalidArgValueError(`${where}: a built-in ${kind} is called '${name}'; give yours another name`);
}

/** Checks that `x` is a LabPolicy (its keys and their types); built-in names are taken. */
export function checkPolicy(x: unknown, where: string): LabPolicy {
  if (x === null || typeof x !== 'object') throw new InvalidArgTypeError(`${where}: a policy must be an object; received ${typeof x}`);
  const o = x as Record<string, unknown>;
  checkKeys(o, LAB_POLICY_KEYS, `${where}'s policy`);
  checkName(o, where, POLICIES.map((p) => p.name), 'policy');
  checkString(o, 'summary', where);
  checkString(o, 'system', where);
  if (o.pool === null || typeof o.pool !== 'object') throw new InvalidArgTypeError(`${where}: 'pool' must be an object ({ behavior, oom })`);
  checkKeys(o.pool as Record<string, unknown>, ['behavior', 'oom'], `${where}'s policy.pool`);
  checkFunction(o, 'fs', where);
  checkFunction(o, 'setup', where, true);
  return x as LabPolicy;
}

/** Checks that `x` is a LabWorkload; built-in names are taken. */
export function checkWorkload(x: unknown, where: string): LabWorkload {
  if (x === null || typeof x !== 'object') throw new InvalidArgTypeError(`${where}: a workload must be an object; received ${typeof x}`);
  const o = x as Record<string, unknown>;
  checkKeys(o, LAB_WORKLOAD_KEYS, `${where}'s workload`);
  checkName(o, where, WORKLOADS.map((w) => w.name), 'workload');
  checkString(o, 'summary', where);
  const adj = o.oomScoreAdj;
  if (adj !== undefined && !(Number.isInteger(adj) && (adj as number) >= -1000 && (adj as number) <= 1000)) {
    throw new InvalidArgValueError(`${where}: 'oomScoreAdj' must be an integer from -1000 to 1000`);
  }
  for (const k of ['schedule', 'plan', 'start']) checkFunction(o, k, where);
  return x as LabWorkload;
}

/**
 * Imports a user's module and checks its export: the default export, or
 * the one named after its kind. Every failure is a LabModuleError that
 * names the path and what was wrong (with the stack of a throwing import).
 */
export async function loadModule(kind: 'policy', path: string): Promise<Loaded<LabPolicy>>;
export async function loadModule(kind: 'workload', path: string): Promise<Loaded<LabWorkload>>;
export async function loadModule(kind: 'policy' | 'workload', path: string): Promise<Loaded<LabPolicy | LabWorkload>> {
  const abs = isAbsolute(path) ? path : resolve(path);
  if (!existsSync(abs)) throw new LabModuleError(abs, 'import', `${kind} module ${abs}: no such file`);
  let ns: Record<string, unknown>;
  try {
    ns = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
  } catch (e) {
    throw new LabModuleError(abs, 'import', `${kind} module ${abs}: importing it threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`, e);
  }
  const value = ns.default ?? ns[kind];
  if (value === undefined) {
    throw new LabModuleError(abs, 'export', `${kind} module ${abs} exports no ${kind}: expected \`export default { name, ... }\` or \`export const ${kind} = { ... }\``);
  }
  try {
    return { value: kind === 'policy' ? checkPolicy(value, abs) : checkWorkload(value, abs), path: abs, label: abs };
  } catch (e) {
    throw new LabModuleError(abs, 'export', `${kind} module ${(e as Error).message}`);
  }
}

/** A built-in policy by name. */
export function builtinPolicy(name: string): Loaded<LabPolicy> | undefined {
  const value = POLICIES.find((p) => p.name === name);
  return value && { value, path: null, label: `built-in:${name}` };
}

/** A built-in workload by name. */
export function builtinWorkload(name: string): Loaded<LabWorkload> | undefined {
  const value = WORKLOADS.find((w) => w.name === name);
  return value && { value, path: null, label: `built-in:${name}` };
}

/** A policy by name (built-in) or absolute path (a module), as a run's workers get it. */
export async function resolvePolicy(name: string, path: string | null): Promise<Loaded<LabPolicy>> {
  if (path !== null) return loadModule('policy', path);
  const b = builtinPolicy(name);
  if (b === undefined) throw new LabModuleError(`built-in:${name}`, 'import', `no built-in policy '${name}'`);
  return b;
}

export async function resolveWorkload(name: string, path: string | null): Promise<Loaded<LabWorkload>> {
  if (path !== null) return loadModule('workload', path);
  const b = builtinWorkload(name);
  if (b === undefined) throw new LabModuleError(`built-in:${name}`, 'import', `no built-in workload '${name}'`);
  return b;
}

/** Every policy and workload a run may name: the built-in ones and the user's modules (LabOptions.modules). */
export interface Catalog {
  policies: Map<string, Loaded<LabPolicy>>;
  workloads: Map<string, Loaded<LabWorkload>>;
}

export async function catalogOf(modules: { policies: Record<string, string>; workloads: Record<string, string> }): Promise<Catalog> {
  const policies = new Map<string, Loaded<LabPolicy>>(POLICIES.map((p) => [p.name, builtinPolicy(p.name)!]));
  const workloads = new Map<string, Loaded<LabWorkload>>(WORKLOADS.map((w) => [w.name, builtinWorkload(w.name)!]));
  for (const path of Object.values(modules.policies)) {
    const l = await loadModule('policy', path);
    policies.set(l.value.name, l);
  }
  for (const path of Object.values(modules.workloads)) {
    const l = await loadModule('workload', path);
    workloads.set(l.value.name, l);
  }
  return { policies, workloads };
}
