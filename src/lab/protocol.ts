/** What the main thread and a lab worker say to each other. */
import type { RecordableHistogram } from 'node:perf_hooks';
import { type PoolHandle, type SharedMutexHandle } from '../index.js';
import type { Shape } from './config.js';
import type { HookFailure } from './hooks.js';

/** A policy or workload as a worker finds it: a built-in by name, or a module by its absolute path. */
export interface ModuleRef {
  name: string;
  path: string | null;
}

export interface WorkerInit {
  handle: PoolHandle;
  /** The filesystem's lock, and the 2015 scene's gate (workloads/scene.ts). */
  mutex: SharedMutexHandle;
  gate: SharedMutexHandle;
  /** PolicySetup.shared */
  shared: unknown;
  board: SharedArrayBuffer;
  origin: number;
  policy: ModuleRef;
  workload: ModuleRef;
  slot: number;
  /** 0 for the first worker in the slot, then one more per respawn. */
  gen: number;
  /** The op index to go on from (a respawned worker continues its predecessor's sequence). */
  startOp: number;
  shape: Shape;
  /** The run's directory (WorkloadContext.dir). */
  dir: string;
}

export interface Histograms {
  alloc: RecordableHistogram;
  op: RecordableHistogram;
  opPlentiful: RecordableHistogram;
}

export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'killed'; at: number }
  /** A hook threw (or the worker failed): the run fails. */
  | { type: 'failed'; failure: HookFailure }
  | ({ type: 'snapshot' | 'final'; gen: number; killed: boolean } & Histograms);
