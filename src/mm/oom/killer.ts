/**
 * The OOM killer (mm/oom_kill.c), called from the slow path's OOM site.
 *
 * - One OOM in flight: CTL.OOM_LOCK is a trylock, a task lock (tasks.ts)
 *   that names the holding thread's task and is released in `finally`;
 *   losers wait a tick and retry (report progress), as the kernel does —
 *   on the main thread a sync allocation gets ERR_WOULD_BLOCK there, never
 *   a spin. A holder that is gone (its thread terminated inside, or its id
 *   reused by another task) is taken over at once.
 * - Before killing: one last allocation at the HIGH watermark, which only
 *   catches memory freed by a parallel kill.
 * - No new victim while one is outstanding (tsk_is_oom_victim without
 *   MMF_OOM_SKIP): we wait for it to die.
 * - Badness = pages held + oom_score_adj × total pages / 1000; adj −1000 is
 *   never chosen.
 * - The kill is delivered to the victim's home thread, which runs the
 *   task's onOomKill there (kill.ts); a killed thread task's default is to
 *   end its worker. The victim gets ALLOC_OOM depth (isVictim).
 * - The reaper (4.6): a victim still holding pages after the reaper delay
 *   is reaped — its pages go back to the pool without its cooperation —
 *   and marked SKIP so that the next OOM may choose another. Without the
 *   reaper, `victimTimeoutMs` (Weiner's 2015 proposal) marks it SKIP
 *   without reaping. With neither, a victim that cannot run (blocked on a
 *   lock held by an allocator that loops) stalls everyone: the 2015
 *   TIF_MEMDIE deadlock.
 * - panicOnOom: the allocation throws a fatal OomPanicError instead.
 */
import { CTL } from '../../binding/control.js';
import { NofailError } from '../../errors.js';
import { formatGfp } from '../gfp.js';
import { ALLOC, native } from '../../binding/native.js';
import type { OomHandler, OomHost, OomOutcome } from '../slowpath.js';
import { lockTestPause, taskUnlock, tryTaskLock } from '../task-lock.js';
import { poolClockMs, TASK_WORD, TASK_FLAG } from '../task-table.js';
import type { Wait } from '../wait.js';
import { warn } from '../stats/warn.js';

export const OOM_ENABLED = 0x1;
export const OOM_REAPER = 0x2;
export const OOM_PANIC = 0x4;
/** The kernel's OOM_REAPER_DELAY (2 * HZ). */
export const OOM_REAPER_DELAY_MS = 2000;

export interface OomOptions {
  /** Reap a victim that has not exited after `reaperDelayMs` (default true). */
  reaper?: boolean;
  /** How long the reaper waits for a victim to exit by itself; default 2000 ms. */
  reaperDelayMs?: number;
  /** Weiner's 2015 proposal: move on to another victim after this long (5000 to reproduce it). */
  victimTimeoutMs?: number;
  /** Throw a fatal OomPanicError instead of killing (panic_on_oom). */
  panicOnOom?: boolean;
}

/** panic_on_oom: the pool refuses to go on. */
export class OomPanicError extends NofailError {
  constructor(message: string) {
    super('ERR_OOM_PANIC', message);
  }
}

export interface TaskRow {
  id: number;
  name: string;
  pages: number;
  oomScoreAdj: number;
  badness: number | null;
  victim: boolean;
  skip: boolean;
  blockedOn: number;
  holder: number;
}

/** The task table as the kernel's oom_dump_tasks prints it. */
export function taskTable(core: OomHost): TaskRow[] {
  const rows: TaskRow[] = [];
  const t = core.tasks;
  for (const id of t.live()) {
    if (!native.taskLive(core.slot, id)) {
      t.clear(id); // its thread is gone; the native cleanup hook returned its pages
      continue;
    }
    const pages = native.taskPages(core.slot, id);
    const adj = t.get(id, TASK_WORD.ADJ);
    const flags = t.flags(id);
    rows.push({
      id,
      name: t.name(id),
      pages,
      oomScoreAdj: adj,
      badness: adj === -1000 ? null : pages + Math.trunc((adj * core.totalPages) / 1000),
      victim: (flags & TASK_FLAG.VICTIM) !== 0,
      skip: (flags & TASK_FLAG.SKIP) !== 0,
      blockedOn: t.get(id, TASK_WORD.BLOCKED_ON),
      holder: t.get(id, TASK_WORD.HOLDER),
    });
  }
  return rows;
}

export class OomKiller implements OomHandler {
  isVictim(core: OomHost, task: number): boolean {
    const id = task === 0 ? core.taskId : task;
    return (core.tasks.flags(id) & TASK_FLAG.VICTIM) !== 0;
  }

  *mayOom(core: OomHost, gfp: number, order: number, task: number): Generator<Wait, OomOutcome, void> {
    const ctl = core.ctl;
    const t = core.tasks;
    const host = core.lockHost;
    t.setFlags(core.taskId, TASK_FLAG.IN_OOM_LOCK);
    if (!tryTaskLock(host, ctl, CTL.OOM_LOCK, TASK_FLAG.IN_OOM_LOCK, true)) {
      t.clearFlags(core.taskId, TASK_FLAG.IN_OOM_LOCK);
      yield tick(core, 'another task holds the OOM lock');
      return { progress: true };
    }
    let outcome: OomOutcome;
    try {
      lockTestPause?.('oom');
      outcome = this.#outOfMemory(core, gfp, order, task);
    } finally {
      taskUnlock(host, ctl, CTL.OOM_LOCK);
      t.clearFlags(core.taskId, TASK_FLAG.IN_OOM_LOCK);
    }
    if (outcome.page === undefined && outcome.progress) yield tick(core, 'waiting for the OOM victim to exit', 20);
    return outcome;
  }

  #outOfMemory(core: OomHost, gfp: number, order: number, task: number): OomOutcome {
    core.vmstat.add('oom_invoked');
    const slot = core.slot;
    const flags = Atomics.load(core.ctl, CTL.OOM_FLAGS);
    const rows = taskTable(core);
    // First settle the last victim: still on its way out, or reaped just now.
    const last = this.#victimOutstanding(core, rows, flags);
    // The last try at HIGH, with no reclaim: only memory a parallel kill or
    // the reaper just freed. After the victims' state, so that a reap's
    // pages are seen before anyone else is chosen.
    const v = native.alloc(slot, order, ALLOC.WMARK_HIGH, task);
    if (v >= 0) return { page: v, progress: true };
    if (last !== 'none') return { progress: true };

    const me = task === 0 ? core.taskId : task;
    const invoker = rows.find((r) => r.id === me);
    const header = `${invoker?.name ?? `task-${me}`} invoked oom-killer: gfp_mask=${formatGfp(gfp)}, order=${order}, oom_score_adj=${invoker?.oomScoreAdj ?? 0}`;
    if (flags & OOM_PANIC) {
      throw new OomPanicError(`Kernel panic - not syncing: Out of memory: panic_on_oom is enabled (${header})`);
    }
    let victim: TaskRow | undefined;
    for (const r of rows) {
      if (r.badness === null || r.skip || r.victim || r.pages <= 0) continue;
      if (victim === undefined || r.badness > victim.badness!) victim = r;
    }
    if (victim === undefined) {
      warn('livelock', `Out of memory and no killable tasks (${header})`, { tasks: rows, order, gfp }, { ratelimit: false });
      return { progress: false };
    }
    this.#kill(core, victim);
    core.vmstat.add('oom_kill');
    warn(
      'oom-kill',
      `Out of memory: Killed task ${victim.id} (${victim.name}) total-pages:${victim.pages} oom_score_adj:${victim.oomScoreAdj}`,
      {
        header,
        gfp_mask: formatGfp(gfp),
        order,
        oom_score_adj: invoker?.oomScoreAdj ?? 0,
        victim: { ...victim, victimPages: victim.pages },
        tasks: rows,
      },
      { ratelimit: false },
    );
    return { progress: true };
  }

  /**
   * Is a victim still on its way out ('outstanding'), or did the reaper just
   * take one's pages ('reaped': retry the allocation before choosing
   * anyone else)? The victim timeout may end a victim's turn. A victim that
   * is gone (pages back, task dead) is done.
   */
  #victimOutstanding(core: OomHost, rows: TaskRow[], flags: number): 'outstanding' | 'reaped' | 'none' {
    const now = poolClockMs();
    const reaperDelay = Atomics.load(core.ctl, CTL.OOM_REAPER_DELAY_MS);
    const timeout = Atomics.load(core.ctl, CTL.OOM_VICTIM_TIMEOUT_MS);
    let state: 'outstanding' | 'reaped' | 'none' = 'none';
    for (const r of rows) {
      if (!r.victim || r.skip) continue;
      const age = now - core.tasks.get(r.id, TASK_WORD.VICTIM_AT);
      if (r.pages <= 0) {
        core.tasks.setFlags(r.id, TASK_FLAG.SKIP); // nothing left to wait for
      } else if (flags & OOM_REAPER && age >= reaperDelay) {
        const pages = native.taskReclaim(core.slot, r.id, false);
        core.tasks.setFlags(r.id, TASK_FLAG.SKIP | TASK_FLAG.SIGPENDING);
        core.vmstat.add('oom_reaped', pages);
        if (pages > 0 && state === 'none') state = 'reaped';
        warn('oom-kill', `oom_reaper: reaped task ${r.id} (${r.name}), now pages:0 (${pages} returned)`, { task: r.id, pages, reaped: true }, { ratelimit: false });
      } else if (timeout > 0 && age >= timeout) {
        core.tasks.setFlags(r.id, TASK_FLAG.SKIP);
        warn('oom-kill', `OOM victim ${r.id} (${r.name}) did not exit within ${timeout} ms; choosing another`, { task: r.id, timeoutMs: timeout }, { ratelimit: false });
      } else {
        state = 'outstanding';
      }
    }
    return state;
  }

  #kill(core: OomHost, victim: TaskRow): void {
    const t = core.tasks;
    // As __oom_kill_process: the signal first, then mark_oom_victim.
    t.set(victim.id, TASK_WORD.VICTIM_AT, poolClockMs());
    t.setFlags(victim.id, TASK_FLAG.VICTIM | TASK_FLAG.SIGPENDING);
    const home = t.get(victim.id, TASK_WORD.HOME) || victim.id;
    t.setFlags(home, TASK_FLAG.SIGPENDING);
    Atomics.add(core.ctl, t.wordOf(home, TASK_WORD.KILL_SEQ), 1);
    Atomics.notify(core.ctl, t.wordOf(home, TASK_WORD.KILL_SEQ));
  }
}

function tick(core: OomHost, why: string, ms = 1): Wait {
  return { word: CTL.FREE_SEQ, expect: Atomics.load(core.ctl, CTL.FREE_SEQ), ms, forMemory: true, why };
}
