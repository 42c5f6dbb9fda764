/**
 * The lab's configuration: what the user chose (LabOptions) and everything
 * derived from it (Shape) — rates, sizes, phases. Shape is a pure function
 * of the options, so the same options and seed give the same plan.
 *
 * Phases of one policy run (duration d):
 *   0 .. d/5      plentiful: fs, net and user run; the hog waits
 *   d/5 ..        pressure: the hog grows by `chunk` pages per op, paced to
 *                 fill the whole pool in 3d/20; a killed hog is respawned
 *                 after `respawnMs` and grows again
 *
 * OOM timers (the reaper's delay, the victim timeout) run at the kernel's
 * values times `timeScale`, so that a run of a few seconds can show what
 * they do: 0.5 by default (reaper 1 s, victim timeout 2.5 s), 0.15 with
 * --quick; 1 gives the kernel's 2 s and 5 s.
 */
import { PAGE_SIZE } from '../index.js';

export const WORKLOADS = ['fs', 'net', 'user', 'hog'] as const;
export type Workload = (typeof WORKLOADS)[number];

export interface LabOptions {
  /** Policy names, in the order they run. */
  policies: string[];
  workers: number;
  poolBytes: number;
  durationMs: number;
  seed: number;
  /** The workload mix the workers are spread over, round robin. */
  workloads: Workload[];
  quick: boolean;
  /** Factor on the kernel's OOM timers (see above). */
  timeScale: number;
}

export const DEFAULTS = {
  workers: 6,
  poolBytes: 32 * 1024 * 1024,
  durationMs: 6000,
  quickDurationMs: 1600,
  seed: 1,
  timeScale: 0.5,
  quickTimeScale: 0.15,
  workloads: [...WORKLOADS] as Workload[],
};

export interface FsShape {
  intervalMs: number;
  /** Blocks in each fs worker's file. */
  fileBlocks: number;
  /** Most reads land in the first hotBlocks blocks. */
  hotBlocks: number;
  reads: [number, number];
  pins: [number, number];
  writes: [number, number];
  /** Commits between two writebacks of the dirty pages (real file I/O). */
  writebackEvery: number;
  /** Worst-case pages one transaction allocates: what reservations and preallocation take. */
  worstCase: number;
}

export interface Shape {
  seed: number;
  timeScale: number;
  durationMs: number;
  totalPages: number;
  fs: FsShape;
  net: { intervalMs: number; burst: [number, number] };
  user: { intervalMs: number; pages: [number, number]; evictChance: number };
  hog: { startMs: number; intervalMs: number; chunk: number; oomScoreAdj: number; respawnMs: number };
  /** No successful operation anywhere for this long is a livelock. */
  watchdogMs: number;
  /** A read-only filesystem is remounted after this long. */
  cooldownMs: number;
  sampleMs: number;
}

/** Extents (index nodes) a transaction can touch: blocks per file / 1024, plus one. */
const EXTENT_BLOCKS = 1024;

export function shapeOf(o: Pick<LabOptions, 'poolBytes' | 'durationMs' | 'seed' | 'timeScale'>): Shape {
  const totalPages = Math.ceil(o.poolBytes / PAGE_SIZE);
  const d = o.durationMs;
  const fs: Omit<FsShape, 'worstCase'> = {
    intervalMs: 2,
    fileBlocks: 2048,
    hotBlocks: 384,
    reads: [3, 10],
    pins: [1, 3],
    writes: [1, 3],
    writebackEvery: 16,
  };
  // Each read, pinned block, written block and log buffer may take a page,
  // and each extent touched an index node.
  const worstCase = fs.reads[1] + 2 * fs.pins[1] + fs.writes[1] + Math.ceil(fs.fileBlocks / EXTENT_BLOCKS) + 1;
  const chunk = 16;
  const fillMs = (3 * d) / 20;
  return {
    seed: o.seed,
    timeScale: o.timeScale,
    durationMs: d,
    totalPages,
    fs: { ...fs, worstCase },
    net: { intervalMs: 4, burst: [8, 32] },
    user: { intervalMs: 2, pages: [1, 8], evictChance: 0.5 },
    hog: {
      startMs: d / 5,
      intervalMs: Math.max(0.05, (chunk * fillMs) / totalPages),
      chunk,
      oomScoreAdj: 500,
      respawnMs: Math.min(500, d / 12),
    },
    watchdogMs: Math.min(1000, Math.max(250, d / 6)),
    cooldownMs: Math.min(500, Math.max(100, d / 20)),
    sampleMs: d <= 2000 ? 50 : 100,
  };
}

/**
 * Spreads n workers over the mix: one of each workload first, then the
 * extra ones to fs (what the policies differ on; more fs workers also mean
 * a busier fs lock), or round robin when fs is not in the mix.
 * 6 over fs,net,user,hog: fs,net,user,hog,fs,fs.
 */
export function assignWorkloads(n: number, mix: readonly Workload[]): Workload[] {
  const out: Workload[] = [];
  for (let i = 0; i < n; i++) {
    if (i < mix.length) out.push(mix[i]!);
    else out.push(mix.includes('fs') ? 'fs' : mix[i % mix.length]!);
  }
  return out;
}
