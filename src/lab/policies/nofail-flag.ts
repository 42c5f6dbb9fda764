/**
 * nofail-flag: what ext4/jbd2 did after 3.19 on Andrew Morton's advice —
 * mark the filesystem's allocations __GFP_NOFAIL, so the allocator loops
 * for them (with last-resort reserves) while everything else may fail.
 */
import { GFP } from '../../index.js';
import { plainFs, SYSTEM_3_19, SYSTEM_3_19_TEXT } from './common.js';
import type { LabPolicy } from '../api.js';

export const nofailFlag: LabPolicy = {
  name: 'nofail-flag',
  summary: 'GFP_NOFS | __GFP_NOFAIL: the allocator loops for the filesystem',
  system: SYSTEM_3_19_TEXT,
  pool: SYSTEM_3_19,
  fs: (ctx) => plainFs(ctx, GFP.NOFAIL),
};
