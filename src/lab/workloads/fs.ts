/**
 * fs: a filesystem in miniature. Each transaction takes the filesystem's
 * lock, demand-pages metadata blocks through a PageCache over a real file
 * (GFP_NOFS reads, reclaimable), pins the few blocks it modifies and copies
 * them into log pages until commit, writes other blocks through the cache,
 * commits (the log goes back into the pinned blocks), and every few commits
 * writes the dirty pages back to the file. How it allocates inside a
 * transaction is the policy's (TxAlloc); the lock and the read-only flag
 * are the Filesystem's (filesystem.ts).
 */
import { closeSync, existsSync, ftruncateSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { GFP, PageCache, type Page, type PinnedBlock } from '../../index.js';
import type { LabRandom, LabWorkload, Shape, TxAlloc } from '../api.js';

/** One filesystem transaction: metadata reads, blocks pinned until commit, full-block writes. */
export interface FsOp {
  reads: number[];
  pins: number[];
  writes: number[];
}

function block(rng: LabRandom, shape: Shape, hotShare: number): number {
  const fs = shape.fs;
  return rng.chance(hotShare) ? rng.int(0, fs.hotBlocks - 1) : rng.int(fs.hotBlocks, fs.fileBlocks - 1);
}

export const fs: LabWorkload<FsOp> = {
  name: 'fs',
  summary: 'transactions under the fs lock: GFP_NOFS metadata reads through a page cache, pinned blocks copied to log pages, writes, commit',
  schedule: (shape) => ({ intervalMs: shape.fs.intervalMs }),
  plan(rng, _i, shape) {
    const s = shape.fs;
    const reads = Array.from({ length: rng.int(s.reads[0], s.reads[1]) }, () => block(rng, shape, 0.8));
    const pins = Array.from({ length: rng.int(s.pins[0], s.pins[1]) }, () => block(rng, shape, 1));
    const writes = Array.from({ length: rng.int(s.writes[0], s.writes[1]) }, () => block(rng, shape, 0.5));
    return { reads, pins: [...new Set(pins)], writes };
  },
  start(ctx) {
    const shape = ctx.shape.fs;
    const file = join(ctx.dir, `${ctx.name}.img`);
    if (!existsSync(file)) {
      const fd = openSync(file, 'w');
      ftruncateSync(fd, shape.fileBlocks * 4096);
      closeSync(fd);
    }
    const cache = new PageCache(ctx.pool, { file });
    const data = new Uint8Array(4096);
    let commits = 0;

    const cached = <T>(tx: TxAlloc, block: number, fn: (gfp: number) => T): T => {
      const miss = !cache.has(block);
      return ctx.timed(() => tx.cache(miss, fn), miss ? 1 : 0);
    };

    const body = (op: FsOp) => (tx: TxAlloc) => {
      const pins: PinnedBlock[] = [];
      const logs: Page[] = [];
      try {
        for (const b of op.reads) cached(tx, b, (gfp) => cache.read(b, gfp));
        for (const b of op.pins) pins.push(cached(tx, b, (gfp) => cache.pin(b, gfp)));
        for (const pin of pins) {
          const log = ctx.timed(() => tx.logPage());
          logs.push(log);
          log.bytes.set(pin.bytes);
          log.bytes[0] = (log.bytes[0]! + 1) & 0xff;
        }
        data.fill(commits & 0xff);
        for (const b of op.writes) cached(tx, b, (gfp) => cache.write(b, data, 0, gfp));
        // Commit: the log goes back into the pinned blocks (resident: no allocation).
        for (let i = 0; i < pins.length; i++) cache.write(pins[i]!.block, logs[i]!.bytes, 0, GFP.NOFS);
      } finally {
        for (const p of pins) p.release();
        for (const l of logs) tx.freeLog(l);
      }
    };

    return {
      run(op) {
        const outcome = ctx.fs.transaction(shape.worstCase, body(op));
        if (outcome === 'ok' && ++commits % shape.writebackEvery === 0) cache.writeback();
        const s = cache.stats;
        ctx.held(s.cached + s.nodes);
        return outcome;
      },
      close: () => cache.close(),
    };
  },
};
