/**
 * The control block: one SharedArrayBuffer per pool that every attached
 * thread shares. Its whole layout — every word, who writes it, the regions
 * after the words and the task table — is declared once, in
 * native/sync/control.h; the addon exports it (native.layout) and the
 * constants here are built from it at load, failing there, naming the
 * entry, if one this side expects is missing. In short (Int32 word indices
 * unless noted):
 *
 *   0..15             native: MAGIC, FREE_SEQ, WAITERS, FREE_PAGES, RESERVED, ...
 *   16..63            JavaScript: DRAIN_GEN, kswapd, OOM, creation settings, ZERO
 *   bytes 256..511    PSI state (psi.ts)
 *   bytes 512..1023   vmstat counters, BigInt64 (vmstat.ts)
 *   words 256..1023   reclaim mailboxes, MAILBOXES x MAILBOX_WORDS (reclaim.ts)
 *   words 1024..      the task table: TASK_WORDS (one cache line) per task id
 *                     < MAX_TABLE_TASKS (task-table.ts)
 */
import { layoutTable, native } from './native.js';

/** Control-block words (native/sync/control.h NOFAIL_CTL_WORDS says what each holds and who writes it). */
export const CTL = layoutTable('ctl', native.layout?.ctl, [
  'MAGIC', 'FREE_SEQ', 'WAITERS', 'FREE_PAGES', 'RESERVED', 'ATTACHED', 'WMARK_MIN', 'WMARK_LOW', 'WMARK_HIGH',
  'DRAIN_GEN', 'KSWAPD_WAKE', 'KSWAPD_FAILURES', 'KSWAPD_ACTIVE', 'OOM_LOCK', 'BEHAVIOR', 'OOM_FLAGS',
  'OOM_VICTIM_TIMEOUT_MS', 'OOM_REAPER_DELAY_MS', 'FILL_ON_FREE', 'STALL_WARN_MS', 'LOCKDEP', 'ZERO',
] as const);

const REGIONS = layoutTable('regions', native.layout?.regions, [
  'PSI_BYTE_OFFSET', 'PSI_BYTES', 'VMSTAT_BYTE_OFFSET', 'VMSTAT_SLOTS', 'MAILBOX_BASE', 'MAILBOX_WORDS', 'MAILBOXES',
  'TASK_TABLE_BASE', 'TASK_WORDS', 'MAX_TABLE_TASKS', 'CONTROL_BYTES',
] as const);

export const PSI_BYTE_OFFSET = REGIONS.PSI_BYTE_OFFSET;
/** The bytes the layout sets aside for PSI state from PSI_BYTE_OFFSET. */
export const PSI_BYTES = REGIONS.PSI_BYTES;
export const VMSTAT_BYTE_OFFSET = REGIONS.VMSTAT_BYTE_OFFSET;
export const VMSTAT_SLOTS = REGIONS.VMSTAT_SLOTS;
export const MAILBOX_BASE = REGIONS.MAILBOX_BASE;
export const MAILBOX_WORDS = REGIONS.MAILBOX_WORDS;
export const MAILBOXES = REGIONS.MAILBOXES;

export const TASK_TABLE_BASE = REGIONS.TASK_TABLE_BASE;
export const TASK_WORDS = REGIONS.TASK_WORDS;
export const MAX_TABLE_TASKS = REGIONS.MAX_TABLE_TASKS;

/** The words of a task's entry in the table (native/sync/control.h NOFAIL_TASK_WORDS says who writes each). */
export const TASK_WORD = layoutTable('task', native.layout?.task, [
  'FLAGS', 'ADJ', 'HOME', 'BLOCKED_ON', 'HOLDER', 'VICTIM_AT', 'KILL_SEQ', 'WAITING', 'CACHED', 'TOKENS', 'NAME',
] as const);

/** 4 KiB of words, then the task table. */
export const CONTROL_BYTES = REGIONS.CONTROL_BYTES;
