/**
 * Argument validation in one place, as Node keeps its own in
 * lib/internal/validators.js: every entry point checks its arguments with
 * these, so a mistake throws the same typed error, with a stable `code`
 * and a message that names the argument, wherever it is made.
 *
 *   wrong type (or an empty name)   InvalidArgTypeError   ERR_INVALID_ARG_TYPE
 *   right type, outside its range   OutOfRangeError       ERR_OUT_OF_RANGE
 *   (a number, or a string that is not one of the accepted ones)
 *   an options key nobody reads     InvalidArgValueError  ERR_INVALID_ARG_VALUE
 *
 * `name` is how the caller knows the argument: 'order', 'options.timeoutMs'.
 */
import { InvalidArgTypeError, InvalidArgValueError, OutOfRangeError } from './errors.js';

/** How a received value reads in a message: its type, and the value itself when short. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : `an instance of ${value.constructor?.name ?? 'Object'}`;
  if (typeof value === 'string') return `type string ('${value.length > 28 ? `${value.slice(0, 25)}...` : value}')`;
  return `type ${typeof value} (${String(value)})`;
}

/** A plain options object (or an instance): not null, not an array, not a primitive. */
export function validateObject(value: unknown, name: string): asserts value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidArgTypeError(`The "${name}" argument must be an object. Received ${describe(value)}`);
  }
}

/**
 * An options bag whose keys are all among `keys`: an unknown key is a
 * mistake (a typo would otherwise quietly take the default), reported with
 * the nearest valid key. Keys whose value is undefined count as absent.
 */
export function validateOptions(value: unknown, name: string, keys: readonly string[]): asserts value is Record<string, unknown> {
  validateObject(value, name);
  for (const key of Object.keys(value)) {
    if (keys.includes(key) || value[key] === undefined) continue;
    const near = nearest(key, keys);
    throw new InvalidArgValueError(
      `${name} has an unknown option '${key}'${near === undefined ? '' : `; did you mean '${near}'?`} (valid: ${keys.join(', ')})`,
    );
  }
}

/**
 * The element of `candidates` closest to `word` (optimal string alignment:
 * an adjacent transposition counts as one edit), if it is at most 1 edit
 * away for a word of up to 3 letters, 2 up to 6, else 3.
 */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  const limit = word.length <= 3 ? 1 : word.length <= 6 ? 2 : 3;
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** An integer in [min, max]. */
export function validateInteger(value: unknown, name: string, min: number, max: number): asserts value is number {
  if (typeof value !== 'number') throw new InvalidArgTypeError(`The "${name}" argument must be of type number. Received ${describe(value)}`);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new OutOfRangeError(`The value of "${name}" is out of range. It must be an integer >= ${min} and <= ${max}. Received ${value}`);
  }
}

/** A finite number in [min, max]. */
export function validateNumber(value: unknown, name: string, min: number, max: number): asserts value is number {
  if (typeof value !== 'number') throw new InvalidArgTypeError(`The "${name}" argument must be of type number. Received ${describe(value)}`);
  if (!(value >= min && value <= max)) {
    throw new OutOfRangeError(`The value of "${name}" is out of range. It must be >= ${min} and <= ${max}. Received ${value}`);
  }
}

export function validateBoolean(value: unknown, name: string): asserts value is boolean {
  if (typeof value !== 'boolean') throw new InvalidArgTypeError(`The "${name}" argument must be of type boolean. Received ${describe(value)}`);
}

/** An optional boolean option: undefined is false. */
export function optionalBoolean(value: unknown, name: string): boolean {
  if (value === undefined) return false;
  validateBoolean(value, name);
  return value;
}

/** A string; `nonEmpty` refuses ''. */
export function validateString(value: unknown, name: string, nonEmpty = false): asserts value is string {
  if (typeof value !== 'string') throw new InvalidArgTypeError(`The "${name}" argument must be of type string. Received ${describe(value)}`);
  if (nonEmpty && value === '') throw new InvalidArgTypeError(`The "${name}" argument must be a non-empty string`);
}

export function validateFunction(value: unknown, name: string): asserts value is (...args: never[]) => unknown {
  if (typeof value !== 'function') throw new InvalidArgTypeError(`The "${name}" argument must be a function. Received ${describe(value)}`);
}

/** One of a fixed set of values (a mode, a policy name). */
export function validateOneOf<T>(value: unknown, name: string, allowed: readonly T[]): asserts value is T {
  if (!allowed.includes(value as T)) {
    const near = typeof value === 'string' ? nearest(value, allowed.filter((a): a is T & string => typeof a === 'string')) : undefined;
    throw new OutOfRangeError(
      `The "${name}" argument must be one of ${allowed.map((a) => (typeof a === 'string' ? `'${a}'` : String(a))).join(', ')}. ` +
        `Received ${describe(value)}${near === undefined ? '' : `; did you mean '${near}'?`}`,
    );
  }
}

export function validateAbortSignal(value: unknown, name: string): asserts value is AbortSignal | undefined {
  if (value !== undefined && !(value instanceof AbortSignal)) {
    throw new InvalidArgTypeError(`The "${name}" argument must be an AbortSignal. Received ${describe(value)}`);
  }
}

/**
 * The keys of an options interface, for validateOptions: the compiler
 * checks that the list names every key of T and nothing else, so a new
 * option cannot be forgotten here.
 *   const KEYS = optionKeys<ReserveOptions>()('mode', 'timeoutMs');
 */
export function optionKeys<T>() {
  return <const K extends readonly (keyof T & string)[]>(
    ...keys: K & ([Exclude<keyof T, K[number]>] extends [never] ? unknown : { missing: Exclude<keyof T, K[number]> })
  ): readonly string[] => keys;
}
