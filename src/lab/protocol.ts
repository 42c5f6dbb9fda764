/** What the main thread and a lab worker say to each other. */
import type { RecordableHistogram } from 'node:perf_hooks';
import { type PoolHandle, type SharedMutexHandle } from '../index.js';
import type { Shape, Workload } from './config.js';

export interface WorkerInit {
  handle: PoolHandle;
  mutex: SharedMutexHandle;
  /** PolicySetup.shared */
  shared: unknown;
  board: SharedArrayBuffer;
  origin: number;
  policy: string;
  workload: Workload;
  slot: number;
  /** 0 for the first worker in the slot, then one more per respawn. */
  gen: number;
  /** The op index to go on from (a respawned worker continues its predecessor's sequence). */
  startOp: number;
  shape: Shape;
  /** Where the fs workers keep their files. */
  dir: string;
}

export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'killed'; at: number }
  | { type: 'snapshot' | 'final'; gen: number; alloc: RecordableHistogram; op: RecordableHistogram; opPlentiful: RecordableHistogram; killed: boolean; errors: number; error?: string };
