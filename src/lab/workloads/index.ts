/**
 * The built-in workloads, in the default mix's order (config.ts
 * BUILTIN_WORKLOAD_NAMES). Each is a LabWorkload (api.ts) over nofail's
 * public API: the interface a user's workload module implements too.
 */
import type { LabWorkload } from '../api.js';
import { fs } from './fs.js';
import { hog } from './hog.js';
import { net } from './net.js';
import { user } from './user.js';

export const WORKLOADS: readonly LabWorkload[] = [fs, net, user, hog];
