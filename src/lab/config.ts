/**
 * The lab's configuration: what the user chose (LabOptions) and everything
 * derived from it for one run (Shape) — rates, sizes, phases. Shape is a
 * pure function of the options and the run's seed, so the same options and
 * seed give the same plan.
 *
 * Phases of one run (duration d; 1.8 s by default, 1.5 s with --quick):
 *   0 .. d/6       plentiful: fs, net and user run; the hog waits
 *   d/6 .. d/3     pressure: the hog grows, paced, to HOG_SHARE of the pool
 *                  (reclaim squeezes the caches; nothing runs out)
 *   then           the 2015 scene (workloads/scene.ts): an fs transaction
 *                  takes the fs lock and holds it for the hog, the hog takes
 *                  the rest of memory and blocks on that lock — the OOM
 *                  victim-to-be waits for a task whose allocation cannot be
 *                  satisfied — and each policy shows what it makes of that
 *   the end      d, or sceneTailMs after the cue if that is later (a slow
 *                  machine cues late; the story still gets its time)
 *   a killed worker is respawned after `respawnMs` (a supervisor)
 *
 * The time budget: the default `nofail` is 11 policies × 3 runs, which
 * must fit in 90 s on 2 cores with the workers' start-up (about a quarter
 * of a second per run); the scene needs no luck, so a run needs only the
 * time for the victim timeout, a second victim and a recovery.
 *
 * OOM timers (the reaper's delay, the victim timeout) run at the kernel's
 * values times `timeScale`: 0.1 by default (reaper 200 ms, victim timeout
 * 500 ms), so that a run of under two seconds shows what each does, with
 * the kernel's 2 : 5 ratio; 1 gives the kernel's 2 s and 5 s (then use a
 * longer --duration).
 */
import { PAGE_SIZE } from '../index.js';

/** The built-in workloads' names, in the default mix's order (workloads/index.ts has them). */
export const BUILTIN_WORKLOAD_NAMES = ['fs', 'net', 'user', 'hog'] as const;

export interface LabOptions {
  /** Policy names, in the order they run (built-in, or a module's). */
  policies: string[];
  /** User modules by the name they declare: absolute paths. */
  modules: { policies: Record<string, string>; workloads: Record<string, string> };
  workers: number;
  poolBytes: number;
  durationMs: number;
  /** The first run's seed; run r (0-based) of every policy uses seed + r. */
  seed: number;
  /** Runs of every policy. */
  repeat: number;
  /** The workload mix the workers are spread over (assignWorkloads). */
  workloads: string[];
  quick: boolean;
  /** Factor on the kernel's OOM timers (see above). */
  timeScale: number;
}

export const DEFAULTS = {
  workers: 6,
  poolBytes: 32 * 1024 * 1024,
  durationMs: 1800,
  quickDurationMs: 1500,
  seed: 1,
  repeat: 3,
  quickRepeat: 1,
  timeScale: 0.1,
  workloads: [...BUILTIN_WORKLOAD_NAMES] as string[],
};

/** Limits of the options (the CLI states them in its help and enforces them). */
export const LIMITS = {
  workers: { min: 1, max: 32 },
  repeat: { min: 1, max: 20 },
  durationMs: { min: 500, max: 600_000 },
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

export interface HogShape {
  /** When it starts growing (ms from the run's start): the end of the plentiful phase. */
  startMs: number;
  intervalMs: number;
  /** Pages per step while it grows, paced. */
  chunk: number;
  /** Where the paced growth stops and the scene is cued: HOG_SHARE of the pool. */
  targetPages: number;
  oomScoreAdj: number;
  respawnMs: number;
}

export interface Shape {
  seed: number;
  timeScale: number;
  durationMs: number;
  totalPages: number;
  /** When memory stops being plentiful (the hog starts): the report's plentiful/pressure boundary. */
  pressureAtMs: number;
  fs: FsShape;
  net: { intervalMs: number; burst: [number, number] };
  /** heapPages: held for good from the start (the service's heap: what an OOM kill of it frees). */
  user: { intervalMs: number; pages: [number, number]; evictChance: number; heapPages: number };
  hog: HogShape;
  /** No successful operation anywhere for this long is a livelock. */
  watchdogMs: number;
  /**
   * A run lasts durationMs, and at least this long after the scene is cued
   * (run.ts): time for the victim timeout, a second victim, the recovery and
   * the watchdog, on a machine slow enough that the hog cued late.
   */
  sceneTailMs: number;
  /** A read-only filesystem is remounted after this long. */
  cooldownMs: number;
  sampleMs: number;
}

/** Extents (index nodes) a transaction can touch: blocks per file / 1024, plus one. */
const EXTENT_BLOCKS = 1024;
/**
 * The hog's paced growth stops at this share of the pool: the others'
 * working sets (the user's heap, transactions in flight, the min
 * watermark) fit in the rest with room to spare, and their caches are
 * reclaimable, so nobody runs out before the scene — which is what keeps
 * an OOM kill from coming first and taking the hog anywhere else.
 */
export const HOG_SHARE = 0.75;
/** The user workload's heap: this share of the pool (the second victim's worth, for the victim timeout). */
export const USER_HEAP_SHARE = 0.05;

export function shapeOf(o: Pick<LabOptions, 'poolBytes' | 'durationMs' | 'timeScale'> & { seed: number }): Shape {
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
  const pressureAtMs = d / 6;
  const growMs = d / 6;
  const targetPages = Math.floor(HOG_SHARE * totalPages);
  const chunk = Math.max(16, Math.ceil(targetPages / 96));
  const watchdogMs = Math.min(1000, Math.max(250, d / 6));
  return {
    seed: o.seed,
    timeScale: o.timeScale,
    durationMs: d,
    totalPages,
    pressureAtMs,
    fs: { ...fs, worstCase },
    net: { intervalMs: 4, burst: [8, 32] },
    user: { intervalMs: 2, pages: [1, 8], evictChance: 0.5, heapPages: Math.floor(USER_HEAP_SHARE * totalPages) },
    hog: {
      startMs: pressureAtMs,
      intervalMs: Math.max(0.05, (chunk * growMs) / targetPages),
      chunk,
      targetPages,
      oomScoreAdj: 500,
      respawnMs: Math.min(500, d / 12),
    },
    watchdogMs,
    sceneTailMs: Math.round(5000 * o.timeScale + watchdogMs + 300),
    cooldownMs: Math.min(500, Math.max(100, d / 20)),
    sampleMs: d <= 2000 ? 25 : d <= 10_000 ? 50 : 100,
  };
}

/** The seed of run r (0-based) of every policy. */
export function seedOf(options: Pick<LabOptions, 'seed'>, run: number): number {
  return (options.seed + run) >>> 0;
}

/**
 * Spreads n workers over the mix: one of each workload first, then the
 * extra ones to fs (what the policies differ on; more fs workers also mean
 * a busier fs lock), or round robin when fs is not in the mix.
 * 6 over fs,net,user,hog: fs,net,user,hog,fs,fs.
 */
export function assignWorkloads(n: number, mix: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    if (i < mix.length) out.push(mix[i]!);
    else out.push(mix.includes('fs') ? 'fs' : mix[i % mix.length]!);
  }
  return out;
}
