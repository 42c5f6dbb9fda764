/**
 * The lab's pure parts: the operation plan is a function of (seed, worker,
 * op) only; the option parsers state their limits; the workload
 * assignment; findings that say "not run" when their policies are missing.
 */
import { describe, expect, it } from 'vitest';
import { parseDuration, parsePolicies, parsePolicy, parsePool, parseRepeat, parseSeed, parseWorkers, parseWorkloads } from '../../src/cli/parse.js';
import { assignWorkloads, seedOf, shapeOf } from '../../src/lab/config.js';
import { opDigest, planOp } from '../../src/lab/plan.js';
import { POLICY_NAMES } from '../../src/lab/policies/index.js';
import { findings } from '../../src/lab/report/findings.js';
import { us } from '../../src/lab/report/format.js';
import { FNV_OFFSET } from '../../src/lab/rng.js';
import { fs as fsWorkload } from '../../src/lab/workloads/fs.js';
import { WORKLOADS } from '../../src/lab/workloads/index.js';

const shape = (seed: number) => shapeOf({ poolBytes: 32 << 20, durationMs: 1800, seed, timeScale: 0.1 });

describe('the operation plan', () => {
  it('is a pure function of (seed, worker, op index)', () => {
    for (const w of WORKLOADS) {
      for (let i = 0; i < 50; i++) expect(planOp(shape(7), w, 3, i)).toEqual(planOp(shape(7), w, 3, i));
    }
    const digest = (seed: number, worker: number) => {
      let h = FNV_OFFSET;
      for (let i = 0; i < 200; i++) h = opDigest(h, planOp(shape(seed), fsWorkload, worker, i));
      return h;
    };
    expect(digest(7, 0)).toBe(digest(7, 0));
    expect(digest(7, 0)).not.toBe(digest(8, 0));
    expect(digest(7, 0)).not.toBe(digest(7, 1));
  });

  it('keeps fs transactions within the worst case that reservations take', () => {
    const s = shape(1);
    for (let i = 0; i < 500; i++) {
      const op = planOp(s, fsWorkload, 0, i);
      const pages = op.reads.length + 2 * op.pins.length + op.writes.length + 2;
      expect(pages).toBeLessThanOrEqual(s.fs.worstCase);
      for (const b of [...op.reads, ...op.pins, ...op.writes]) expect(b).toBeLessThan(s.fs.fileBlocks);
    }
  });

  it('spreads workers one per workload, the rest to fs', () => {
    expect(assignWorkloads(6, ['fs', 'net', 'user', 'hog'])).toEqual(['fs', 'net', 'user', 'hog', 'fs', 'fs']);
    expect(assignWorkloads(3, ['net', 'user'])).toEqual(['net', 'user', 'net']);
  });

  it('gives run r of every policy the seed S + r', () => {
    expect([0, 1, 2].map((r) => seedOf({ seed: 41 }, r))).toEqual([41, 42, 43]);
    expect(shapeOf({ poolBytes: 32 << 20, durationMs: 1800, seed: seedOf({ seed: 41 }, 2), timeScale: 0.1 }).seed).toBe(43);
  });
});

describe('option parsers', () => {
  it('accept what the help says', () => {
    expect(parseDuration('6s')).toBe(6000);
    expect(parseDuration('1500ms')).toBe(1500);
    expect(parseDuration('2')).toBe(2000);
    expect(parsePool('32MiB')).toBe(32 << 20);
    expect(parseWorkers('6')).toBe(6);
    expect(parseRepeat('3')).toBe(3);
    expect(parseSeed('42')).toBe(42);
    expect(parsePolicies('fail-fast, loop')).toEqual(['fail-fast', 'loop']);
    expect(parsePolicies('loop,./my-policy.mjs')).toEqual(['loop', './my-policy.mjs']);
    expect(parsePolicy('/abs/policy.js')).toBe('/abs/policy.js');
    expect(parseWorkloads('fs,hog')).toEqual(['fs', 'hog']);
    expect(parseWorkloads('fs,../w.mjs')).toEqual(['fs', '../w.mjs']);
  });

  it('reject the rest with what was expected, limits that depend on other options included', () => {
    expect(() => parseDuration('5x')).toThrow(/duration like/);
    expect(() => parseDuration('10ms')).toThrow(/500ms to 10m/);
    expect(() => parsePool('1k')).toThrow(/4MiB to 1GiB/);
    // The limit the mix sets is stated before main.ts enforces it.
    expect(() => parseWorkers('0')).toThrow(/from 1 to 32, and at least one per workload in the mix \(4 with the default fs,net,user,hog\)/);
    expect(() => parseRepeat('0')).toThrow(/from 1 to 20/);
    expect(() => parseSeed('-1')).toThrow(/integer/);
    expect(() => parsePolicies('nope')).toThrow(/unknown policy 'nope'; choose from fail-fast.*or give a module's path/);
    expect(() => parseWorkloads('disk')).toThrow(/unknown workload 'disk'/);
  });
});

describe('findings and formatting', () => {
  it('say "not run" for claims whose policies did not run', () => {
    const f = findings([], shape(1));
    expect(f.length).toBe(6);
    for (const x of f) expect(x.verdict).toBe('not run');
    expect(POLICY_NAMES.length).toBe(11);
  });

  it('format latencies by magnitude', () => {
    expect(us(850)).toBe('850µs');
    expect(us(1234)).toBe('1.2ms');
    expect(us(3_400_000)).toBe('3.40s');
  });
});
