/**
 * fail-fast: Linux 3.19 as shipped. A small GFP_NOFS allocation fails once
 * reclaim makes no progress (the accidental 2015 change, 9879de7373fc), and
 * the filesystem sees ENOMEM in the middle of a transaction.
 */
import { plainFs, SYSTEM_3_19, SYSTEM_3_19_TEXT } from './common.js';
import type { LabPolicy } from '../api.js';

export const failFast: LabPolicy = {
  name: 'fail-fast',
  summary: 'plain GFP_NOFS; the allocator gives up when reclaim makes no progress',
  system: SYSTEM_3_19_TEXT,
  pool: SYSTEM_3_19,
  fs: (ctx) => plainFs(ctx),
};
