import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultWatermarks, GFP, PAGE_SIZE, Pool, type PoolOptions } from '../../../src/index.js';
import { expectAccounting, expectCode } from '../../fixtures/expect.js';

const pools: Pool[] = [];
function create(options?: PoolOptions): Pool {
  const p = Pool.create(options);
  pools.push(p);
  return p;
}
afterEach(() => {
  for (const p of pools.splice(0)) p.close();
});

describe('Pool.create', () => {
  it('makes a 64 MiB pool of order-10 blocks with kernel-style watermarks by default', () => {
    const p = create();
    const s = p.stats();
    expect(p.totalPages).toBe(16384);
    expect(p.maxOrder).toBe(10);
    expect(s.totalPages).toBe(16384);
    expect(s.freePages).toBe(16384);
    expect(s.allocatedPages).toBe(0);
    expect(s.reservedPages).toBe(0);
    expect(s.threadPages).toBe(0);
    expect(s.threads).toBe(1);
    expect(s.tasks).toBeGreaterThanOrEqual(1);
    expect(s.watermarks).toEqual(defaultWatermarks(16384));
    expect(s.buddyinfo).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16]);
    expect(s.counters).toEqual({
      allocs: 0,
      frees: 0,
      pgalloc: 0,
      pgfree: 0,
      allocFailWatermark: 0,
      allocFailFragmented: 0,
    });
    expectAccounting(p, 0);
  });

  it('seeds the free lists with the largest aligned blocks that fit', () => {
    // 1000 = 512 + 256 + 128 + 64 + 32 + 8
    expect(create({ size: 1000 * PAGE_SIZE }).stats().buddyinfo).toEqual([0, 0, 0, 1, 0, 1, 1, 1, 1, 1, 0]);
    // 1000 = 62 * 16 + 8
    expect(create({ size: 1000 * PAGE_SIZE, maxOrder: 4 }).stats().buddyinfo).toEqual([0, 0, 0, 1, 62]);
    // 1539 = 1024 + 512 + 2 + 1
    expect(create({ size: 1539 * PAGE_SIZE }).stats().buddyinfo).toEqual([1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
    expect(create({ size: PAGE_SIZE, maxOrder: 0 }).stats().buddyinfo).toEqual([1]);
    expect(create({ size: '64KiB', maxOrder: 15 }).stats().buddyinfo).toEqual([
      0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
  });

  it('takes whole pages, as bytes or size strings, and refuses the rest naming the nearest valid sizes', () => {
    expect(create({ size: 8192 }).totalPages).toBe(2);
    expect(create({ size: '1MiB' }).totalPages).toBe(256);
    expect(create({ size: '8k' }).totalPages).toBe(2);
    expectCode(() => create({ size: 1000 }), 'ERR_OUT_OF_RANGE', /nearest valid sizes are 4096$/);
    expectCode(() => create({ size: 4097 }), 'ERR_OUT_OF_RANGE', /4096 or 8192/);
    expectCode(() => create({ size: '1GB' }), 'ERR_OUT_OF_RANGE', /decimal unit.*'1GiB'/);
  });

  it('takes explicit watermarks', () => {
    const p = create({ size: 1000 * PAGE_SIZE, watermarks: { min: 400, low: '2000KiB', high: 600 } });
    expect(p.stats().watermarks).toEqual({ min: 400, low: 500, high: 600 });
  });

  it('accepts populate, hugepages and releaseFreedOrder', () => {
    const p = create({
      size: '4MiB',
      watermarks: { min: 0, low: 0, high: 0 },
      populate: true,
      hugepages: true,
      releaseFreedOrder: 9,
    });
    const pg = p.alloc(GFP.KERNEL, 10);
    pg.bytes.fill(0xab);
    p.free(pg);
    // Released memory reads back as zero: the block was given back to the kernel.
    const again = p.alloc(GFP.KERNEL, 10);
    expect(again.pfn).toBe(pg.pfn);
    expect(again.bytes.every((b) => b === 0)).toBe(true);
    p.free(again);
    expectAccounting(p, 0);
  });

  it('mlock either works or fails with ERR_SYSTEM naming mlock', () => {
    let p: Pool | undefined;
    try {
      p = create({ size: '1MiB', mlock: true });
    } catch (e) {
      expect((e as { code: string }).code).toBe('ERR_SYSTEM');
      expect((e as Error).message).toMatch(/mlock/);
      return;
    }
    const pg = p.alloc();
    pg.bytes[0] = 1;
    p.free(pg);
    expectAccounting(p, 0);
  });

  // A child whose shell lowered a limit first, so that a system call of
  // Pool.create fails for a reason the test knows: the error carries the
  // errno and the call, and is classified by the errno (no message parsed).
  function createUnder(limits: string, options: object, wrap = ''): Record<string, unknown> {
    const fixture = fileURLToPath(new URL('../../fixtures/create-fails.mjs', import.meta.url));
    expect(existsSync(fileURLToPath(new URL('../../../dist/index.js', import.meta.url))), 'run `npx tsc -p tsconfig.build.json` first').toBe(true);
    const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const script = `${limits} && exec ${wrap}${quote(process.execPath)} ${quote(fixture)} ${quote(JSON.stringify(options))}`;
    const r = spawnSync('sh', ['-c', script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
  }

  it('a failed mmap is a SystemError with its errno and syscall', () => {
    // 8 GiB of address space: Node and the pool's metadata (512 MiB,
    // calloc) fit, a 256 GiB region cannot be mapped.
    const r = createUnder('ulimit -v 8388608', { size: '256GiB' });
    expect(r).toMatchObject({ name: 'SystemError', code: 'ERR_SYSTEM', errno: constants.errno.ENOMEM, syscall: 'mmap' });
    expect(r.message).toMatch(/^mmap failed: .* \(errno \d+\)/);
  });

  it('a failed mlock is a SystemError with its errno and syscall, unless the process may lock regardless', () => {
    // RLIMIT_MEMLOCK of 64 KiB: 1 MiB cannot be locked without CAP_IPC_LOCK.
    // Where this process holds that capability and may drop it from the
    // child's bounding set (setpriv), it does, so that the refusal is seen.
    const drop = spawnSync('setpriv', ['--bounding-set=-ipc_lock', 'true']).status === 0 ? 'setpriv --bounding-set=-ipc_lock ' : '';
    const r = createUnder('ulimit -l 64', { size: '1MiB', mlock: true }, drop);
    if (r.ipcLock) {
      expect(r).toEqual({ created: true, ipcLock: true });
      return;
    }
    expect(r).toMatchObject({ name: 'SystemError', code: 'ERR_SYSTEM', syscall: 'mlock' });
    expect([constants.errno.ENOMEM, constants.errno.EPERM, constants.errno.EAGAIN]).toContain(r.errno);
    expect(r.message).toMatch(/^mlock failed: .*RLIMIT_MEMLOCK/);
  });

  it('hands out a structured-clonable handle', () => {
    const p = create({ size: '1MiB' });
    const h = p.handle;
    expect(Object.isFrozen(h)).toBe(true);
    expect(typeof h.id).toBe('number');
    expect(typeof h.nonce).toBe('number');
    expect(h.control).toBeInstanceOf(SharedArrayBuffer);
    const c = structuredClone(h);
    expect(c.id).toBe(h.id);
    expect(c.nonce).toBe(h.nonce);
    // The clone shares the control block, so it attaches to the same pool.
    const tasks = p.stats().tasks;
    const q = Pool.attach(c);
    pools.push(q);
    expect(q.totalPages).toBe(256);
    expect(p.stats().threads).toBe(2);
    expect(p.stats().tasks).toBe(tasks + 1);
    expect(q.taskId).not.toBe(p.taskId);
  });

  it('gives every pool its own id', () => {
    const a = create({ size: '64KiB' });
    const b = create({ size: '64KiB' });
    expect(a.handle.id).not.toBe(b.handle.id);
  });
});

describe('Pool.create option validation names the option', () => {
  it.each<[string, unknown, string, RegExp]>([
    ['options null', null, 'ERR_INVALID_ARG_TYPE', /"options" argument/],
    ['options a string', '64MiB', 'ERR_INVALID_ARG_TYPE', /"options" argument/],
    ['size zero', { size: 0 }, 'ERR_OUT_OF_RANGE', /^size /],
    ['size negative', { size: -4096 }, 'ERR_OUT_OF_RANGE', /^size /],
    ['size fractional', { size: 4096.5 }, 'ERR_OUT_OF_RANGE', /^size /],
    ['size NaN', { size: NaN }, 'ERR_OUT_OF_RANGE', /^size /],
    ['size Infinity', { size: Infinity }, 'ERR_OUT_OF_RANGE', /^size /],
    ['size unreadable', { size: 'huge' }, 'ERR_OUT_OF_RANGE', /^size/],
    ['size a boolean', { size: true }, 'ERR_INVALID_ARG_TYPE', /^size /],
    ['size above 2 TiB', { size: '4TiB' }, 'ERR_OUT_OF_RANGE', /^size .*2 TiB/],
    ['maxOrder a string', { maxOrder: '10' }, 'ERR_INVALID_ARG_TYPE', /^maxOrder /],
    ['maxOrder 16', { maxOrder: 16 }, 'ERR_OUT_OF_RANGE', /^maxOrder .*0 to 15/],
    ['maxOrder negative', { maxOrder: -1 }, 'ERR_OUT_OF_RANGE', /^maxOrder /],
    ['maxOrder fractional', { maxOrder: 2.5 }, 'ERR_OUT_OF_RANGE', /^maxOrder /],
    ['watermarks null', { watermarks: null }, 'ERR_INVALID_ARG_TYPE', /^watermarks /],
    ['watermarks unordered', { size: '4MiB', watermarks: { min: 10, low: 5 } }, 'ERR_OUT_OF_RANGE', /^watermarks /],
    ['watermarks.min negative', { watermarks: { min: -1 } }, 'ERR_OUT_OF_RANGE', /watermarks\.min/],
    ['watermarks unknown key', { watermarks: { mid: 1 } }, 'ERR_INVALID_ARG_VALUE', /watermarks .*'mid'; did you mean 'min'\?/],
    ['populate a string', { populate: 'yes' }, 'ERR_INVALID_ARG_TYPE', /^populate /],
    ['mlock a number', { mlock: 1 }, 'ERR_INVALID_ARG_TYPE', /^mlock /],
    ['hugepages null', { hugepages: null }, 'ERR_INVALID_ARG_TYPE', /^hugepages /],
    ['releaseFreedOrder a string', { releaseFreedOrder: '9' }, 'ERR_INVALID_ARG_TYPE', /order/i],
    ['releaseFreedOrder above maxOrder', { maxOrder: 4, releaseFreedOrder: 5 }, 'ERR_OUT_OF_RANGE', /0 to 4/],
    ['releaseFreedOrder negative', { releaseFreedOrder: -1 }, 'ERR_OUT_OF_RANGE', /order/i],
    ['pcp a string', { pcp: 'on' }, 'ERR_INVALID_ARG_TYPE', /^pcp /],
    ['pcp true', { pcp: true }, 'ERR_INVALID_ARG_TYPE', /^pcp /],
    ['pcp.batch zero', { pcp: { batch: 0 } }, 'ERR_OUT_OF_RANGE', /^pcp\.batch /],
    ['pcp.batch fractional', { pcp: { batch: 1.5 } }, 'ERR_OUT_OF_RANGE', /^pcp\.batch /],
    ['pcp.high below batch', { pcp: { batch: 10, high: 5 } }, 'ERR_OUT_OF_RANGE', /^pcp\.high /],
  ])('%s', (_name, options, code, message) => {
    expectCode(() => create(options as PoolOptions), code, message);
  });

  // Regression test (fixed): src/mm/pool.ts Pool.create reuses checkOrder() for releaseFreedOrder,
  // whose messages say "order must be ...", not the option's name.
  it('releaseFreedOrder errors name releaseFreedOrder', () => {
    expectCode(() => create({ releaseFreedOrder: '9' as unknown as number }), 'ERR_INVALID_ARG_TYPE', /releaseFreedOrder/);
    expectCode(() => create({ maxOrder: 4, releaseFreedOrder: 5 }), 'ERR_OUT_OF_RANGE', /releaseFreedOrder/);
    expectCode(() => create({ releaseFreedOrder: -1 }), 'ERR_OUT_OF_RANGE', /releaseFreedOrder/);
  });
});
