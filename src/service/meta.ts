/**
 * Entry metadata for PoolCache: a small JSON value kept beside an entry's
 * pages (a digest, a content type) and handed back with it. It is copied
 * and frozen when stored, so a caller's later changes to its object do not
 * reach the cache, and every reader gets the same immutable value.
 */
import { InvalidArgTypeError, InvalidArgValueError, OutOfRangeError } from '../errors.js';

export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** An entry's meta: a JSON object. */
export type CacheMeta = { readonly [key: string]: JsonValue };

/** The most a meta may take, as JSON text: it lives on the JS heap, beside pages that are bounded. */
export const MAX_META_BYTES = 1024;

const MAX_DEPTH = 8;

/** A frozen copy of `meta` (undefined stays undefined); throws for anything that is not a small JSON object. */
export function snapshotMeta<M extends CacheMeta>(meta: M | undefined): M | undefined {
  if (meta === undefined) return undefined;
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) throw new InvalidArgTypeError('meta must be a plain object of JSON values');
  const flat = flatCopy(meta);
  if (flat !== null) return flat as M;
  const copy = copyJson(meta, 0, 'meta') as M;
  const bytes = Buffer.byteLength(JSON.stringify(copy));
  if (bytes > MAX_META_BYTES) throw new OutOfRangeError(`meta must be at most ${MAX_META_BYTES} bytes as JSON; it is ${bytes}`);
  return copy;
}

/**
 * The common case, cheaply: a plain object of strings, finite numbers,
 * booleans and nulls ({ sha, type }), copied and measured without
 * JSON.stringify. Null when it is anything else (copyJson decides).
 */
function flatCopy(meta: object): CacheMeta | null {
  const proto = Object.getPrototypeOf(meta);
  if (proto !== Object.prototype && proto !== null) return null;
  const out: Record<string, JsonValue> = {};
  // {} and the commas and colons, and a key's quotes.
  let bytes = 2;
  for (const k in meta) {
    if (!Object.hasOwn(meta, k)) continue;
    const v = (meta as Record<string, unknown>)[k];
    if (typeof v === 'string') {
      // Quotes; a string that JSON would escape is measured by copyJson.
      if (!/^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/.test(v)) return null;
      bytes += v.length + 2;
    } else if (typeof v === 'number' && Number.isFinite(v)) bytes += String(v).length;
    else if (typeof v === 'boolean' || v === null) bytes += 5;
    else return null;
    if (!/^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/.test(k)) return null;
    bytes += k.length + 4;
    out[k] = v as JsonValue;
  }
  if (bytes > MAX_META_BYTES) return null;
  return Object.freeze(out);
}

function copyJson(v: unknown, depth: number, path: string): JsonValue {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new InvalidArgValueError(`${path} is ${v}, which JSON cannot hold`);
    return v;
  }
  if (typeof v !== 'object') throw new InvalidArgValueError(`${path} is a ${typeof v}, not a JSON value`);
  if (depth >= MAX_DEPTH) throw new OutOfRangeError(`meta is nested deeper than ${MAX_DEPTH} levels (at ${path})`);
  if (Array.isArray(v)) return Object.freeze(v.map((x, i) => copyJson(x, depth + 1, `${path}[${i}]`)));
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) throw new InvalidArgValueError(`${path} is an instance of ${(v as object).constructor?.name ?? 'a class'}, not a plain object`);
  const out: Record<string, JsonValue> = {};
  for (const [k, x] of Object.entries(v)) out[k] = copyJson(x, depth + 1, `${path}.${k}`);
  return Object.freeze(out);
}
