/**
 * The bad-input barrage (issues 7 and 11): every public method and every
 * native entry point, each argument (and each field of an options object)
 * replaced in turn by wrong types, NaN, ±Infinity, negatives, fractions,
 * huge numbers, forged and stale handles.
 *
 * Every (entry point, argument position, bad value) has its expected outcome
 * in the table below: the error code it throws, or `accepted` with the
 * reason the value is not bad there after all (undefined meaning the
 * default, a string that is a valid name...). A call that succeeds without
 * being listed as accepted, or throws another code than listed, or throws
 * without a stable code, fails the test with the entry point, position and
 * value named. The process never crashes, and the accounting still adds up.
 */
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { type ErrorCode, GFP, LoadShedder, Mempool, metricsOf, type Page, Pool, PoolBuffer, PoolCache, SharedMutex } from '../../../src/index.js';
import { FILL, native, type NativeCreateOptions } from '../../../src/binding/native.js';

const BAD = {
  undefined: undefined,
  null: null,
  true: true,
  "'x'": 'x',
  "'1'": '1',
  symbol: Symbol('s'),
  '{}': {},
  '[]': [],
  function: () => 1,
  '10n': 10n,
  NaN: NaN,
  Infinity: Infinity,
  '-Infinity': -Infinity,
  '-1': -1,
  '0.5': 0.5,
  '-0.5': -0.5,
  '2**31': 2 ** 31,
  '2**32': 2 ** 32,
  '2**53': 2 ** 53,
  MAX_VALUE: Number.MAX_VALUE,
  '-(2**31)': -(2 ** 31),
  Int32Array: new Int32Array(4),
  Float64Array: new Float64Array(4),
  'shared Int32Array': new Int32Array(new SharedArrayBuffer(16)),
  '{pfn:0,order:0}': { pfn: 0, order: 0 },
  'forged handle': { pfn: 1e9, order: 0, gen: 1, pool: 1 },
} as const;
type Label = keyof typeof BAD;
const LABELS = Object.keys(BAD) as Label[];

/** Tried where a page is asked for, besides the values above (made from a live pool). */
type PageLabel = 'page of another pool' | 'page freed already' | 'clone of a live page';

const NUMBERS: Label[] = ['NaN', 'Infinity', '-Infinity', '-1', '0.5', '-0.5', '2**31', '2**32', '2**53', 'MAX_VALUE', '-(2**31)'];
const HUGE: Label[] = ['2**31', '2**32', '2**53', 'MAX_VALUE'];
const OBJECTS: Label[] = ['{}', '[]', 'Int32Array', 'Float64Array', 'shared Int32Array', '{pfn:0,order:0}', 'forged handle'];
/** Objects with keys that are no option's: the index keys of typed arrays, a page descriptor's. */
const FOREIGN_KEYS: Label[] = ['Int32Array', 'Float64Array', 'shared Int32Array', '{pfn:0,order:0}', 'forged handle'];
const INT32ARRAYS: Label[] = ['Int32Array', 'shared Int32Array'];
const STRINGS: Label[] = ["'x'", "'1'"];

type Outcome = ErrorCode | { accepted: string };
type Expect = Partial<Record<Label | PageLabel, Outcome>>;

const TYPE = 'ERR_INVALID_ARG_TYPE';
const RANGE = 'ERR_OUT_OF_RANGE';
const acc = (reason: string): Outcome => ({ accepted: reason });
const dflt = (what: string): Outcome => acc(`undefined means the default: ${what}`);
const NULL_DEFAULT = acc('null, like undefined, means the default (the option is read with ??)');
const VALUE = 'ERR_INVALID_ARG_VALUE';
/**
 * An options bag (validators.ts validateOptions): {} names no option, so
 * every option takes its default; an array is not a bag; a key that is no
 * option's (a typed array's indices, a page descriptor's fields) is a
 * mistake, named in the error.
 */
const BAG: Array<[Label[], Outcome]> = [[['{}'], acc('no options: each takes its default')], [['[]'], TYPE], [FOREIGN_KEYS, VALUE]];

/** `rest` for every bad value, then the exceptions in order (a later one wins). */
function outcomes(rest: Outcome, ...except: Array<[Label | PageLabel | readonly (Label | PageLabel)[], Outcome]>): Expect {
  const e: Expect = Object.fromEntries(LABELS.map((l) => [l, rest]));
  for (const [ls, o] of except) for (const l of typeof ls === 'string' ? [ls] : ls) e[l] = o;
  return e;
}

/** An integer argument: a non-number is a type error, a number it cannot take is out of range. */
const int = (...except: Parameters<typeof outcomes>[1][]) => outcomes(TYPE, [NUMBERS, RANGE], ...except);
const gfpArg = outcomes(TYPE, [NUMBERS, 'ERR_INVALID_GFP'], ['undefined', dflt('GFP.KERNEL')]);
const gfpOption = outcomes(TYPE, [NUMBERS, 'ERR_INVALID_GFP'], ['undefined', dflt('the documented mask')], ['null', NULL_DEFAULT]);
const orderArg = int(['undefined', dflt('order 0')]);
const optionsArg = outcomes(TYPE, ...BAG, ['undefined', dflt('every option its default')]);
const pageArg = outcomes(
  'ERR_BAD_PAGE',
  ['page of another pool', 'ERR_BAD_PAGE'],
  ['page freed already', 'ERR_DOUBLE_FREE'],
  ['clone of a live page', 'ERR_BAD_PAGE'],
);
const boolOption = outcomes(TYPE, ['undefined', dflt('false')], ['true', acc('a boolean: the option on')]);
const fnOption = outcomes(TYPE, ['undefined', dflt('none')], ['function', acc('a function is what is asked for')]);
const fnRequired = outcomes(TYPE, ['function', acc('a function is what is asked for')]);
const nameOption = outcomes(TYPE, ['undefined', dflt('the documented name')], [STRINGS, acc('a non-empty string is a name')]);
const nameRequired = outcomes(TYPE, [STRINGS, acc('a non-empty string is a name')]);
/** A count or size that is read with ?? and range-checked as a whole (type errors included). */
const rangeOption = (what: string) => outcomes(RANGE, ['undefined', dflt(what)], ['null', NULL_DEFAULT]);
const timeoutOption = outcomes(
  RANGE,
  ['undefined', dflt('no timeout')],
  ['0.5', acc('a fraction of a millisecond is a timeout')],
  [HUGE, acc('a finite timeout, however long, is a deadline (async timers cap theirs at 2^31 - 1 ms)')],
);
const signalOption = outcomes(TYPE, ['undefined', dflt('no signal')]);
const adjOption = int(['undefined', dflt('0, or -1000 on the main thread')], ['null', NULL_DEFAULT], ['-1', acc('an oom_score_adj within -1000..1000')]);
/** A key of a PoolCache: PoolCache<K extends {}>, keys compared as a Map compares them. */
const cacheKey = outcomes(acc('any value but null and undefined is a key (PoolCache<K extends {}>, Map semantics)'), [['undefined', 'null'], TYPE]);

/** An argument, or a field of an argument (an options object's, or a list's element). */
type Position = number | [arg: number, field: string | number];

interface Entry {
  name: string;
  good: unknown[];
  at: Array<[Position, Expect]>;
  call(args: unknown[]): unknown;
}

function describePosition(name: string, pos: Position, label: string): string {
  return typeof pos === 'number' ? `${name}(arg ${pos} = ${label})` : `${name}(arg ${pos[0]}[${JSON.stringify(pos[1])}] = ${label})`;
}

function withBad(good: unknown[], pos: Position, bad: unknown): unknown[] {
  const args = [...good];
  if (typeof pos === 'number') {
    args[pos] = bad;
  } else {
    const [i, field] = pos;
    const inner = good[i];
    args[i] = Array.isArray(inner) ? Object.assign([...inner], { [field]: bad }) : { ...(inner as object), [field]: bad };
  }
  return args;
}

const tally = { calls: 0, accepted: 0, native: 0 };

/**
 * Runs every entry at every position with every value its table lists, and
 * returns what did not go as listed. Each expectation lists every value of
 * BAD (outcomes() fills them all), so no value goes untried.
 */
async function barrage(entries: Entry[], values: Record<string, unknown>): Promise<string[]> {
  const wrong: string[] = [];
  for (const e of entries) {
    for (const [pos, expect] of e.at) {
      for (const label of LABELS) if (!(label in expect)) wrong.push(`${describePosition(e.name, pos, label)}: no expected outcome in the table`);
      for (const [label, want] of Object.entries(expect) as Array<[string, Outcome]>) {
        if (!(label in values)) throw new Error(`no value for ${label}`);
        const where = describePosition(e.name, pos, label);
        tally.calls++;
        let got: Outcome;
        let message = '';
        try {
          const r = e.call(withBad(e.good, pos, values[label]));
          if (r instanceof Promise) await r;
          got = { accepted: '' };
        } catch (err) {
          const code = (err as { code?: unknown } | null)?.code;
          message = String((err as Error | null)?.message ?? String(err));
          if (typeof code !== 'string') {
            wrong.push(`${where}: threw without a stable code: ${message}`);
            continue;
          }
          got = code as ErrorCode;
        }
        if (typeof want === 'string') {
          if (got !== want) wrong.push(`${where}: ${typeof got === 'string' ? `threw ${got} (${message})` : 'was accepted silently'}; the table expects ${want}`);
        } else if (typeof got === 'string') {
          wrong.push(`${where}: threw ${got} (${message}); the table expects it accepted (${want.accepted})`);
        } else {
          tally.accepted++;
        }
      }
    }
  }
  return wrong;
}

afterAll(() => {
  console.log(`bad-input barrage: ${tally.calls} calls (${tally.calls - tally.native} public, ${tally.native} native), ${tally.accepted} accepted as the table lists`);
});

describe('bad-input barrage', () => {
  it('every public method, argument and option field', async () => {
    const pool = Pool.create({ size: 128 * 4096, watermarks: { min: 4, low: 8, high: 12 }, oom: true });
    const other = Pool.create({ size: '1MiB' });
    const keep: Page[] = [];
    const page = () => {
      const p = pool.alloc();
      keep.push(p);
      return p;
    };
    // What a call hands back goes back, so the pool never runs dry.
    const back = (r: unknown): void => {
      if (Array.isArray(r)) for (const p of r) back(p);
      else if (r && typeof r === 'object' && 'pfn' in r && 'bytes' in r) pool.free(r as Page);
      else if (r && typeof r === 'object' && 'release' in r) (r as { release(): void }).release();
      else if (r instanceof PoolBuffer) r.free();
    };
    const live = page();
    const freed = pool.alloc();
    pool.free(freed);
    const values: Record<string, unknown> = {
      ...BAD,
      'page of another pool': other.alloc(),
      'page freed already': freed,
      'clone of a live page': structuredClone({ pfn: live.pfn, order: live.order }),
    };
    const cache = new PoolCache(pool, { maxBytes: '64KiB' });
    const mutex = new SharedMutex({ name: 'm' });
    const entries: Entry[] = [
      { name: 'pool.alloc', good: [GFP.KERNEL, 0], at: [[0, gfpArg], [1, orderArg]], call: (a) => back(pool.alloc(a[0] as number, a[1] as number)) },
      {
        name: 'pool.allocAsync',
        good: [GFP.KERNEL, 0, { timeoutMs: 50 }],
        at: [[0, gfpArg], [1, orderArg], [2, optionsArg], [[2, 'timeoutMs'], timeoutOption], [[2, 'signal'], signalOption]],
        call: (a) => pool.allocAsync(a[0] as number, a[1] as number, a[2] as object).then(back),
      },
      { name: 'pool.free', good: [page()], at: [[0, pageArg]], call: (a) => pool.free(a[0] as Page) },
      {
        name: 'pool.allocBulk',
        good: [2, GFP.KERNEL, 0],
        at: [[0, int()], [1, gfpArg], [2, orderArg]],
        call: (a) => back(pool.allocBulk(a[0] as number, a[1] as number, a[2] as number)),
      },
      {
        name: 'pool.freeBulk',
        good: [[page()]],
        at: [[0, outcomes(TYPE, ['[]', acc('an empty list: nothing to free')])], [[0, 0], pageArg]],
        call: (a) => pool.freeBulk(a[0] as Page[]),
      },
      { name: 'pool.transfer', good: [page()], at: [[0, pageArg]], call: (a) => pool.transfer(a[0] as Page) },
      {
        name: 'pool.adopt',
        good: [{ pool: 0, pfn: 0, order: 0, gen: 0 }],
        at: [[0, outcomes(TYPE, [OBJECTS, 'ERR_BAD_PAGE'], ['forged handle', RANGE], [['page of another pool', 'page freed already', 'clone of a live page'], 'ERR_BAD_PAGE'])]],
        call: (a) => back(pool.adopt(a[0] as never)),
      },
      {
        name: 'pool.reserve',
        good: [4, {}],
        at: [[0, int()], [1, optionsArg], [[1, 'mode'], rangeOption("'watermark'")], [[1, 'timeoutMs'], timeoutOption]],
        call: (a) => back(pool.reserve(a[0] as number, a[1] as object)),
      },
      {
        name: 'pool.reserveAsync',
        good: [4, { timeoutMs: 50 }],
        at: [[0, int()], [1, optionsArg], [[1, 'mode'], rangeOption("'watermark'")], [[1, 'timeoutMs'], timeoutOption], [[1, 'signal'], signalOption]],
        call: (a) => pool.reserveAsync(a[0] as number, a[1] as object).then(back),
      },
      {
        name: 'pool.registerShrinker',
        good: [{ name: 's', needs: 'none', count: () => 0, scan: () => 0 }],
        at: [
          [0, outcomes(TYPE)],
          [[0, 'name'], nameRequired],
          [[0, 'needs'], outcomes(RANGE)],
          [[0, 'count'], fnRequired],
          [[0, 'scan'], fnRequired],
          [[0, 'seeks'], rangeOption('DEFAULT_SEEKS')],
          [[0, 'batch'], rangeOption('SHRINK_BATCH')],
        ],
        call: (a) => pool.registerShrinker(a[0] as never)(),
      },
      {
        name: 'pool.registerTask',
        good: [{ name: 't' }],
        at: [[0, outcomes(TYPE, [FOREIGN_KEYS, VALUE])], [[0, 'name'], nameRequired], [[0, 'oomScoreAdj'], adjOption], [[0, 'onOomKill'], fnOption]],
        call: (a) => pool.registerTask(a[0] as never).unregister(),
      },
      {
        name: 'pool.setWatermarks',
        good: [{ min: 4, low: 8, high: 12 }],
        at: [
          [0, outcomes(TYPE, ['undefined', acc('undefined restores the default watermarks')], ['{}', acc('no levels given: each takes its default spacing')], [FOREIGN_KEYS, VALUE])],
          [[0, 'min'], outcomes(TYPE, [NUMBERS, RANGE], ["'x'", RANGE], ['undefined', dflt('the default spacing')], ["'1'", RANGE])],
          [[0, 'low'], outcomes(TYPE, [NUMBERS, RANGE], [STRINGS, RANGE], ['undefined', dflt('the default spacing')])],
          [[0, 'high'], outcomes(TYPE, [NUMBERS, RANGE], [STRINGS, RANGE], ['undefined', dflt('the default spacing')])],
        ],
        call: (a) => {
          pool.setWatermarks(a[0] as never);
          pool.setWatermarks({ min: 4, low: 8, high: 12 });
        },
      },
      {
        name: 'pool.faultInject',
        good: [{}],
        at: [
          [
            0,
            outcomes(
              TYPE,
              [['undefined', '{}'], acc('an injector with every default, which fails nothing (probability 0, failNth 0)')],
              ['null', acc('null turns fault injection off')],
              [FOREIGN_KEYS, VALUE],
            ),
          ],
          [[0, 'probability'], int(['undefined', dflt('0')], ['0.5', acc('half a percent')])],
          [[0, 'interval'], int(['undefined', dflt('1')], [['2**31', '2**32'], acc('a count up to 2^53 - 1')])],
          [[0, 'times'], int(['undefined', dflt('-1, unlimited')], ['-1', acc('-1 means unlimited')], [['2**31', '2**32'], acc('a count up to 2^53 - 1')])],
          [[0, 'space'], outcomes(TYPE, [NUMBERS, RANGE], ["'x'", RANGE], ['undefined', dflt('0')], ["'1'", acc('a size string: one byte')], [['2**31', '2**32'], acc('a byte count up to 2^53 - 1')])],
          [[0, 'minOrder'], int(['undefined', dflt('1')])],
          [[0, 'ignoreGfpWait'], outcomes(TYPE, ['undefined', dflt('true')], ['true', acc('a boolean')])],
          [[0, 'failNth'], int(['undefined', dflt('0, off')], [['2**31', '2**32'], acc('a count up to 2^53 - 1')])],
          [[0, 'seed'], int(['undefined', dflt('a random seed')], ['2**31', acc('a uint32 seed')])],
          [[0, 'verbose'], int(['undefined', dflt('2')])],
        ],
        // Off again at once: an injector left on would fail the calls after it.
        call: (a) => {
          try {
            pool.faultInject(a[0] as never);
          } finally {
            pool.faultInject(null);
          }
        },
      },
      {
        name: 'pool.psiTrigger',
        good: [{ kind: 'some', stallUs: 1000, windowUs: 500_000 }, () => {}],
        at: [
          [0, outcomes(TYPE, [FOREIGN_KEYS, VALUE])],
          [1, fnRequired],
          [[0, 'kind'], outcomes(TYPE)],
          [[0, 'stallUs'], int()],
          [[0, 'windowUs'], int()],
        ],
        call: (a) => (pool.psiTrigger(a[0] as never, a[1] as never) as () => void)(),
      },
      {
        name: 'pool.mempool',
        good: [{ minNr: 1 }],
        at: [
          [0, outcomes(TYPE, ['{}', RANGE], [FOREIGN_KEYS, VALUE])],
          [[0, 'minNr'], outcomes(RANGE)],
          [[0, 'order'], rangeOption('0')],
          [[0, 'capacity'], rangeOption('minNr')],
          [[0, 'name'], outcomes(TYPE, ['undefined', dflt('the documented name')], ['null', NULL_DEFAULT], [STRINGS, acc('a non-empty string is a name')])],
        ],
        call: (a) => Mempool.create(pool, a[0] as never).destroy(),
      },
      { name: 'pool.buffer', good: [page(), 10], at: [[0, pageArg], [1, int(['undefined', dflt('the whole page')])]], call: (a) => pool.buffer(a[0] as Page, a[1] as number) },
      { name: 'pool.allocBuffer', good: [5000, GFP.KERNEL], at: [[0, int()], [1, gfpArg]], call: (a) => back(pool.allocBuffer(a[0] as number, a[1] as number)) },
      {
        name: 'pool.allocBufferAsync',
        good: [5000, GFP.KERNEL, { timeoutMs: 50 }],
        at: [[0, int()], [1, gfpArg], [2, optionsArg], [[2, 'timeoutMs'], timeoutOption], [[2, 'signal'], signalOption]],
        call: (a) => pool.allocBufferAsync(a[0] as number, a[1] as number, a[2] as never).then(back),
      },
      {
        name: 'pool.metrics',
        good: [{ prefix: 'x_', labels: { a: 'b' } }],
        at: [
          [0, optionsArg],
          [[0, 'prefix'], outcomes(RANGE, ['undefined', dflt("'nofail_'")], ['null', NULL_DEFAULT], ["'x'", acc('a valid metric name prefix')])],
          [
            [0, 'labels'],
            outcomes(
              TYPE,
              ['undefined', dflt('no labels')],
              ['null', NULL_DEFAULT],
              [['{}', '[]'], acc('an object without label names: no labels')],
              [['Int32Array', 'Float64Array', 'shared Int32Array'], RANGE],
            ),
          ],
        ],
        call: (a) => metricsOf(pool, a[0] as never),
      },
      {
        name: 'metricsOf',
        good: [[{ pool, labels: { p: '1' } }], {}],
        at: [
          [0, outcomes(TYPE)],
          [
            1,
            outcomes(TYPE, ['undefined', dflt('no options')], ...BAG),
          ],
        ],
        call: (a) => metricsOf(a[0] as never, a[1] as never),
      },
      {
        name: 'new PoolCache',
        good: [{ maxBytes: '64KiB' }],
        at: [
          [0, outcomes(TYPE, [FOREIGN_KEYS, VALUE])],
          [[0, 'maxBytes'], outcomes(TYPE, [NUMBERS, RANGE], [STRINGS, RANGE], [['2**31', '2**32'], acc('a bound above the pool size: the pool bounds the cache first')])],
          [
            [0, 'maxEntries'],
            outcomes(RANGE, ['undefined', dflt('no entry bound')], [HUGE, acc("a bound at or above maxBytes' 16 pages never binds, and is not handed to lru-cache (which preallocates for it)")]),
          ],
          [[0, 'gfp'], gfpOption],
          [[0, 'name'], nameOption],
          [[0, 'seeks'], rangeOption('2')],
          [[0, 'batch'], rangeOption('32')],
        ],
        call: (a) => new PoolCache(pool, a[0] as never).close(),
      },
      {
        // maxBytes so large that an entry bound of 2^31 would bind: lru-cache
        // would preallocate for it (and take the process down), so it is refused.
        name: 'new PoolCache (maxBytes 2^52)',
        good: [{ maxBytes: 2 ** 52 }],
        at: [[[0, 'maxEntries'], outcomes(RANGE, ['undefined', dflt('no entry bound')], [['2**53', 'MAX_VALUE'], acc("a bound at or above maxBytes' 2^40 pages never binds")])]],
        call: (a) => new PoolCache(pool, a[0] as never).close(),
      },
      {
        name: 'cache.set',
        good: ['k', 'v'],
        at: [
          [0, cacheKey],
          [1, outcomes(TYPE, [STRINGS, acc('a string is stored as its UTF-8 bytes')], ['[]', acc('an empty list of parts: an empty value')])],
        ],
        call: (a) => cache.set(a[0] as string, a[1] as string),
      },
      { name: 'cache.get', good: ['k'], at: [[0, cacheKey]], call: (a) => cache.get(a[0] as string) },
      {
        name: 'new LoadShedder',
        good: [{ policy: 'loop' }],
        at: [
          [0, optionsArg],
          [[0, 'policy'], rangeOption("'reserve'")],
          [[0, 'budgetMs'], outcomes(RANGE, ['undefined', dflt('100 ms')], ['0.5', acc('a fraction of a millisecond is a budget')])],
          [
            [0, 'maxBodyBytes'],
            outcomes(TYPE, [NUMBERS, RANGE], ["'x'", RANGE], ['undefined', dflt('1 MiB')], ['null', NULL_DEFAULT], ["'1'", acc('a size string: one byte')], [['2**31', '2**32'], acc('a byte count: larger bodies than the pool are refused when they come')]),
          ],
          [[0, 'psiSome'], outcomes(RANGE, ['undefined', dflt('60 %')], ['0.5', acc('half a percent')])],
          [[0, 'psiFull'], outcomes(RANGE, ['undefined', dflt('30 %')], ['0.5', acc('half a percent')])],
          [[0, 'minFree'], rangeOption("'min'")],
          [[0, 'retryAfterSeconds'], outcomes(RANGE, ['undefined', dflt('1 s')], ['0.5', acc('rounded up to whole seconds (Retry-After takes an integer)')])],
          [[0, 'gfp'], gfpOption],
        ],
        call: (a) => new LoadShedder(pool, a[0] as never),
      },
      {
        name: 'Pool.create',
        good: [{ size: '64KiB' }],
        at: [
          [0, optionsArg],
          [
            [0, 'size'],
            outcomes(TYPE, [NUMBERS, RANGE], ["'x'", RANGE], ['undefined', dflt('64 MiB')], ['null', NULL_DEFAULT], ["'1'", RANGE], [['2**31', '2**32'], acc('2 and 4 GiB pools are valid sizes (MAP_NORESERVE: nothing is touched)')]),
          ],
          [[0, 'maxOrder'], int(['undefined', dflt('10')], ['null', NULL_DEFAULT])],
          [[0, 'watermarks'], outcomes(TYPE, ['undefined', dflt('kernel spacing')], ['{}', acc('no levels given: each takes its default spacing')], [FOREIGN_KEYS, VALUE])],
          ...(['populate', 'mlock', 'hugepages', 'allowMainThreadBlocking', 'zeroOnFree', 'poison', 'lockdep'] as const).map((k): [Position, Expect] => [[0, k], boolOption]),
          [[0, 'releaseFreedOrder'], int(['undefined', dflt('never')])],
          [[0, 'pcp'], outcomes(TYPE, ['undefined', dflt('{ batch: 63, high: 252 }')], ['{}', acc('an object: batch and high each default when absent')], [FOREIGN_KEYS, VALUE])],
          [[0, 'behavior'], outcomes(RANGE, ['undefined', dflt("'linux-4.0'")])],
          [[0, 'oom'], outcomes(TYPE, ['undefined', dflt('no OOM killer')], ['true', acc('true: the OOM killer with its defaults')], ['{}', acc('an object: every OOM option defaults when absent')], [FOREIGN_KEYS, VALUE])],
          [[0, 'stallWarnMs'], rangeOption('10 000 ms')],
          [[0, 'name'], nameOption],
          [[0, 'oomScoreAdj'], adjOption],
          [[0, 'onOomKill'], fnOption],
        ],
        call: (a) => Pool.create(a[0] as never).close(),
      },
      {
        name: 'Pool.attach',
        good: [pool.handle, {}],
        at: [
          [0, outcomes(TYPE)],
          [1, optionsArg],
          [[1, 'pcp'], outcomes(TYPE, ['undefined', dflt('{ batch: 63, high: 252 }')], ['{}', acc('an object: batch and high each default when absent')], [FOREIGN_KEYS, VALUE])],
          [[1, 'allowMainThreadBlocking'], boolOption],
          [[1, 'name'], nameOption],
          [[1, 'oomScoreAdj'], adjOption],
          [[1, 'onOomKill'], fnOption],
        ],
        call: (a) => Pool.attach(a[0] as never, a[1] as never).close(),
      },
      {
        name: 'mutex.lock',
        good: [pool],
        at: [[0, outcomes(TYPE, ['undefined', acc('no pool: the holder is the thread')])]],
        call: (a) => {
          mutex.lock(a[0] as never);
          mutex.unlock();
        },
      },
    ];
    const wrong = await barrage(entries, values);
    cache.close();
    expect(wrong).toEqual([]);

    for (const p of keep) {
      try {
        pool.free(p);
      } catch {
        // transferred by the barrage
      }
    }
    pool.checkInvariants();
    const s = pool.stats();
    expect(s.freePages + s.cachedPages + s.allocatedPages).toBe(s.totalPages);
    expect(s.allocatedPages).toBe(0);
    expect(s.reservedPages).toBe(0);
    // After close(), everything throws ERR_POOL_CLOSED.
    pool.close();
    for (const fn of [() => pool.alloc(), () => pool.stats(), () => pool.reserve(1), () => pool.allocBulk(1), () => pool.free(keep[0]!)]) {
      expect(() => fn()).toThrow(expect.objectContaining({ code: 'ERR_POOL_CLOSED' }));
    }
  });

  it('every native entry point, called directly', async () => {
    const pool = Pool.create({ size: 128 * 4096 });
    const h = pool.handle;
    const ctl = new Int32Array(h.control);
    const { slot } = native.attach(h.id, h.nonce, ctl);
    const out = new Int32Array(64);
    const stats = new Float64Array(native.statsLength);
    /** Arguments from..to - 1, all integers. */
    const ints = (to: number, from = 0): Array<[Position, Expect]> => Array.from({ length: to - from }, (_, i) => [from + i, int()]);
    /** An Int32Array argument: the barrage's are 4 elements long. */
    const int32Array = (short: Outcome) => outcomes(TYPE, [INT32ARRAYS, short]);
    const entries: Entry[] = [
      { name: 'native.alloc', good: [slot, 0, 1, 0], at: ints(4), call: (a) => native.alloc(...(a as [number, number, number, number])) },
      { name: 'native.free', good: [slot, 0, 0, 0], at: ints(4), call: (a) => native.free(...(a as [number, number, number, number])) },
      {
        name: 'native.allocBulk',
        good: [slot, 2, 0, 1, 0, out],
        at: [...ints(5), [5, int32Array(acc('an Int32Array with room for the 2 pages asked for'))]],
        call: (a) => native.allocBulk(...(a as [number, number, number, number, number, Int32Array])),
      },
      {
        name: 'native.freeBulk',
        good: [slot, new Int32Array([0, 0, 0]), 1],
        // Four zeros: the (pfn 0, order 0, gen 0) triple of a page that is free.
        at: [[0, int()], [1, int32Array('ERR_BAD_PAGE')], [2, int()]],
        call: (a) => native.freeBulk(...(a as [number, Int32Array, number])),
      },
      { name: 'native.setOwner', good: [slot, 0, 0, 0, 0, 0], at: ints(6), call: (a) => native.setOwner(...(a as [number, number, number, number, number, number])) },
      { name: 'native.meta', good: [slot, 0], at: ints(2), call: (a) => native.meta(...(a as [number, number])) },
      { name: 'native.region', good: [slot, 0], at: ints(2), call: (a) => native.region(...(a as [number, number])) },
      {
        name: 'native.setOwnerBulk',
        good: [slot, new Int32Array([0, 0, 0]), 1, 0, 0],
        // The barrage's Int32Arrays hold zeros: the (pfn 0, order 0, gen 0) triple of a page that is free.
        at: [[0, int()], [1, int32Array('ERR_BAD_PAGE')], [2, int()], [3, int()], [4, int()]],
        call: (a) => native.setOwnerBulk(...(a as [number, Int32Array, number, number, number])),
      },
      { name: 'native.taskCreate', good: [slot], at: ints(1), call: (a) => native.taskCreate(a[0] as number) },
      {
        name: 'native.taskReclaim',
        good: [slot, 99, false],
        // retire: true of a task id that was never created is out of range.
        at: [...ints(2), [2, outcomes(TYPE, ['true', RANGE])]],
        call: (a) => native.taskReclaim(...(a as [number, number, boolean])),
      },
      { name: 'native.taskPages', good: [slot, 0], at: ints(2), call: (a) => native.taskPages(...(a as [number, number])) },
      { name: 'native.taskLive', good: [slot, 0], at: ints(2), call: (a) => native.taskLive(...(a as [number, number])) },
      { name: 'native.setWatermarks', good: [slot, 1, 2, 3], at: ints(4), call: (a) => native.setWatermarks(...(a as [number, number, number, number])) },
      { name: 'native.addReserved', good: [slot, 0], at: ints(2), call: (a) => native.addReserved(...(a as [number, number])) },
      { name: 'native.tryReserve', good: [slot, 1, 0], at: ints(3), call: (a) => native.tryReserve(...(a as [number, number, number])) },
      { name: 'native.effectiveMark', good: [slot, 0, 0], at: ints(3), call: (a) => native.effectiveMark(...(a as [number, number, number])) },
      {
        name: 'native.stats',
        good: [slot, stats],
        at: [[0, int()], [1, outcomes(TYPE, ['Float64Array', RANGE])]],
        call: (a) => native.stats(...(a as [number, Float64Array])),
      },
      { name: 'native.check', good: [slot], at: ints(1), call: (a) => native.check(a[0] as number) },
      {
        name: 'native.attach',
        good: [h.id, h.nonce, ctl],
        // An id or nonce of 2^31 is a uint32 that names no live pool; 4
        // elements are too few for a control block.
        at: [[0, int(['2**31', 'ERR_POOL_CLOSED'])], [1, int(['2**31', 'ERR_POOL_CLOSED'])], [2, int32Array(RANGE)]],
        call: (a) => native.detach(native.attach(...(a as [number, number, Int32Array])).slot),
      },
      {
        name: 'native.create',
        good: [
          { bytes: 65536, maxOrder: 4, min: 0, low: 0, high: 0, populate: false, mlock: false, hugepages: false, fill: FILL.NONE, releaseOrder: -1 },
          new Int32Array(new SharedArrayBuffer(ctl.byteLength)),
        ],
        at: [
          // Every field is required (TypeScript resolves the defaults), so no object without them will do.
          [0, outcomes(TYPE)],
          [[0, 'bytes'], int([['2**31', '2**32'], acc('2 and 4 GiB regions are valid sizes (MAP_NORESERVE: nothing is touched)')])],
          ...(['maxOrder', 'min', 'low', 'high'] as const).map((f): [Position, Expect] => [[0, f], int()]),
          ...(['populate', 'mlock', 'hugepages'] as const).map((f): [Position, Expect] => [[0, f], outcomes(TYPE, ['true', acc('a boolean: the option on')])]),
          [[0, 'fill'], int(['-1', acc('-1 is FILL.NONE: nothing written')])],
          [[0, 'releaseOrder'], int(['-1', acc('-1 is the good value: never release freed blocks')])],
          [1, int32Array(RANGE)],
        ],
        call: (a) => native.detach(native.create(a[0] as NativeCreateOptions, a[1] as Int32Array).slot),
      },
      { name: 'native.detach', good: [9999], at: ints(1), call: (a) => native.detach(a[0] as number) },
      {
        name: 'native.init',
        good: [{}],
        at: [[0, outcomes(TYPE, [OBJECTS, acc('init() takes the error classes it finds in the object; one without any changes nothing')])]],
        call: (a) => native.init(a[0] as object),
      },
    ];
    const before = tally.calls;
    const wrong = await barrage(entries, BAD);
    // Too few arguments: none at all.
    for (const e of entries) {
      tally.calls++;
      try {
        e.call([]);
        wrong.push(`${e.name}(): accepted with no arguments`);
      } catch (err) {
        if ((err as { code?: unknown }).code !== TYPE) wrong.push(`${e.name}(): threw ${String((err as { code?: unknown }).code)} with no arguments; expected ${TYPE}`);
      }
    }
    tally.native += tally.calls - before;
    expect(wrong).toEqual([]);
    expect(native.check(slot)).toBeNull();
    native.detach(slot);
    pool.checkInvariants();
    const s = pool.stats();
    expect(s.freePages + s.cachedPages + s.allocatedPages).toBe(s.totalPages);
  });

  it('a handle of a pool whose creating thread exited is closed; a page handle of it is foreign', async () => {
    const w = new Worker(new URL('../../fixtures/create-and-exit.mjs', import.meta.url));
    // Listen for the exit from the start: the worker may be gone by the time its message is read.
    const exited = new Promise((r) => w.once('exit', r));
    const { handle, page } = await new Promise<any>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    await exited;
    expect(() => Pool.attach(handle)).toThrow(expect.objectContaining({ code: 'ERR_POOL_CLOSED' }));
    const mine = Pool.create({ size: '1MiB' });
    expect(() => mine.free(page)).toThrow(expect.objectContaining({ code: 'ERR_BAD_PAGE' }));
    expect(() => mine.adopt({ pool: handle.id, ...page, gen: 1 })).toThrow(expect.objectContaining({ code: 'ERR_BAD_PAGE' }));
    mine.checkInvariants();
  });
});
