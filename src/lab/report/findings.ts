/**
 * Findings: what each claim of the 2015 discussion looks like in this run.
 * Every sentence is a template filled from the results; a claim the data
 * does not support is stated as not observed, and a claim whose policies
 * did not run is stated as not run. Nothing here is written in advance.
 *
 * Every verdict is a claim the data can refute: it rests on something
 * measured in this run, never on what a policy does by design (a loop
 * that cannot fail proves nothing by not failing), and each finding's text
 * ends with the rule and thresholds its verdict was decided by.
 */
import type { PolicyResult } from '../collect.js';
import type { Shape } from '../config.js';
import { ms, num, pct, us } from './format.js';

export type Verdict = 'observed' | 'partly observed' | 'not observed' | 'not run';

export interface Finding {
  claim: string;
  verdict: Verdict;
  text: string;
}

type Pick = (name: string) => PolicyResult | undefined;

/**
 * "The loop only moves": a looping policy waited when its fs transaction
 * p99 is at least WAIT_FACTOR times fail-fast's in the same run and
 * WAIT_MIN_US above it (fail-fast is the same workload without the loop),
 * or when it had more fs allocations over a second, or more livelocks,
 * than fail-fast.
 */
export const WAIT_FACTOR = 3;
export const WAIT_MIN_US = 10_000;

/**
 * "Preallocation is costly": in time, when preallocate's fs transaction
 * service time p50 while memory was plentiful exceeds fail-fast's by both
 * COST_REL (relative) and COST_MIN_US (absolute), so that noise between two
 * runs of the same code does not count; in memory, when the pages it set
 * aside and left unused average IDLE_SHARE of the pool or more.
 */
export const COST_REL = 0.25;
export const COST_MIN_US = 50;
export const IDLE_SHARE = 0.01;

function notRun(claim: string, names: string[]): Finding {
  return { claim, verdict: 'not run', text: `Needs ${names.join(', ')}; not in this run.` };
}

/** "1 livelock", "2 livelocks". */
function count(n: number, what: string): string {
  return `${num(n)} ${what}${n === 1 ? '' : 's'}`;
}

function change(a: number, b: number): string {
  if (!(b > 0)) return 'n/a';
  const d = (100 * (a - b)) / b;
  return `${d >= 0 ? '+' : ''}${d.toFixed(0)}%`;
}

function nofs(pick: Pick): Finding {
  const claim = "3.19's failing GFP_NOFS allocations (ext4 went read-only)";
  const ff = pick('fail-fast');
  if (ff === undefined) return notRun(claim, ['fail-fast']);
  const m = ff.metrics;
  const ref = pick('oom-kill') ?? pick('loop');
  const refText = ref ? ` Under linux-4.0 (${ref.name}) ${num(ref.metrics.txFailed)} failed.` : '';
  const rule = ' Rule: observed when any fail-fast fs transaction fails.';
  if (m.txFailed === 0) {
    return { claim, verdict: 'not observed', text: `fail-fast (linux-3.19): no fs transaction failed; its GFP_NOFS allocations always found reclaimable memory in this run.${refText}${rule}` };
  }
  return {
    claim,
    verdict: 'observed',
    text:
      `fail-fast (linux-3.19): ${num(m.txFailed)} fs transactions failed part-way with ENOMEM (${num(ff.workloads.fs?.allocFails ?? 0)} failed GFP_NOFS allocations); ` +
      `the filesystem went read-only ${num(m.readOnlyFlips)} time${m.readOnlyFlips === 1 ? '' : 's'} and refused ${num(m.txRefused)} transactions while read-only, ` +
      `committing ${num(m.txPerSec)} tx/s.${refText}${rule}`,
  };
}

function livelock(pick: Pick, shape: Shape): Finding {
  const claim = "the looping allocator's livelock when the OOM victim is blocked on a lock (TIF_MEMDIE stall)";
  const ok = pick('oom-kill');
  if (ok === undefined) return notRun(claim, ['oom-kill']);
  const m = ok.metrics;
  const blocked = ok.kills.filter((k) => k.blockedBy !== undefined);
  const stuck = blocked.filter((k) => k.exitMs === null || k.exitMs > shape.watchdogMs);
  const others = ['loop', 'nofail-flag', 'caller-retry', 'oom-reaper', 'oom-timeout']
    .map(pick)
    .filter((r): r is PolicyResult => r !== undefined)
    .map((r) => `${r.name} ${r.metrics.livelocks} (longest ${ms(r.metrics.longestNoProgressMs)}${r.metrics.reaped ? `, ${r.metrics.reaped} reaped` : ''}${r.metrics.canaries ? `, ${r.metrics.canaries} deadlock canaries` : ''})`);
  const cmp = others.length ? ` Livelocks elsewhere: ${others.join('; ')}.` : '';
  const blockedText =
    blocked.length === 0
      ? 'no victim was waiting for a lock when it was chosen'
      : `${blocked.length} of ${m.oomKills} victims were waiting for the fs lock held by ${[...new Set(blocked.map((k) => k.blockedBy))].join(', ')} when chosen; ` +
        blocked.map((k) => (k.exitMs === null ? 'one never exited' : `one exited after ${ms(k.exitMs)}`)).join(', ');
  const rule =
    ` Rule: observed when a victim chosen while waiting for the lock outlived the watchdog time (${ms(shape.watchdogMs)}) and the watchdog saw a livelock; ` +
    'partly when only one of the two.';
  const text = `oom-kill (linux-4.0, no reaper): ${blockedText}; the watchdog saw ${m.livelocks} livelock(s), the longest ${ms(m.longestNoProgressMs)} without progress.${cmp}${rule}`;
  const verdict: Verdict = stuck.length > 0 && m.livelocks > 0 ? 'observed' : blocked.length > 0 || m.livelocks > 0 ? 'partly observed' : 'not observed';
  return { claim, verdict, text };
}

function timeout(pick: Pick, shape: Shape): Finding {
  const claim = "the victim timeout's extra kills (Weiner 2015, against the reaper)";
  const to = pick('oom-timeout');
  if (to === undefined) return notRun(claim, ['oom-timeout']);
  const m = to.metrics;
  const reaper = pick('oom-reaper');
  const limit = ms(5000 * shape.timeScale);
  const ref = reaper ? ` With the reaper: ${reaper.metrics.oomKills} kills, ${reaper.metrics.nonHogKills} of them not the hog, ${reaper.metrics.reaped} victims reaped.` : '';
  const text =
    `oom-timeout: ${m.victimTimeouts} victims outlived the ${limit} timeout; ${m.oomKills} kills, ${m.nonHogKills} of them not the hog` +
    `${m.victimsNeverExited ? `, ${m.victimsNeverExited} victims never exited` : ''}.${ref}`;
  const extra = m.nonHogKills > 0 || (reaper !== undefined && m.oomKills > reaper.metrics.oomKills);
  const verdict: Verdict = m.victimTimeouts > 0 && extra ? 'observed' : m.victimTimeouts > 0 ? 'partly observed' : 'not observed';
  const rule =
    ' Rule: observed when a victim outlived the timeout and there were extra kills (a task that was not the hog, or more kills than with the reaper); ' +
    'partly when a victim outlived it without extra kills.';
  return { claim, verdict, text: `${text}${verdict === 'not observed' ? ' No victim stayed past the timeout, so the timeout never chose another.' : ''}${rule}` };
}

function reservations(pick: Pick): Finding {
  const claim = "reservations: their cost when memory is plentiful against their guarantee under pressure";
  const ff = pick('fail-fast');
  const rs = ['reserve-watermark', 'reserve-tokens'].map(pick).filter((r): r is PolicyResult => r !== undefined);
  if (ff === undefined || rs.length === 0) return notRun(claim, ['fail-fast', 'reserve-watermark or reserve-tokens']);
  const base = ff.metrics;
  const parts = rs.map((r) => {
    const m = r.metrics;
    return (
      `${r.name}: fs transaction service time p50 ${us(m.txPlentiful.p50)} while memory was plentiful against ${us(base.txPlentiful.p50)} for fail-fast (${change(m.txPlentiful.p50, base.txPlentiful.p50)}), ` +
      `${num(m.idleMean, 1)} pages reserved and unused on average; under pressure ${num(m.txFailed)} failed transactions against ${num(base.txFailed)}, ` +
      `${num(r.vmstat.reserve_waits ?? 0)} reservations had to wait, fs transaction p99 ${us(m.tx.p99)} against ${us(base.tx.p99)}`
    );
  });
  const guaranteed = rs.every((r) => r.metrics.txFailed === 0);
  const verdict: Verdict = base.txFailed === 0 ? 'not observed' : guaranteed ? 'observed' : 'partly observed';
  const tail = base.txFailed === 0 ? ' fail-fast did not fail either, so the guarantee was not put to the test.' : guaranteed ? ' No reserved transaction failed.' : ' Some reserved transactions failed.';
  const rule = ' Rule: observed when fail-fast failed transactions and no reserved one did; partly when reserved ones failed too; not observed when fail-fast failed none.';
  return { claim, verdict, text: `${parts.join('. ')}.${tail}${rule}` };
}

function preallocation(pick: Pick): Finding {
  const claim = "mempools and preallocation (Chinner: preallocation is costly, and demand-paged metadata escapes it)";
  const ff = pick('fail-fast');
  const mp = pick('mempool');
  const pa = pick('preallocate');
  if (ff === undefined || (mp === undefined && pa === undefined)) return notRun(claim, ['fail-fast', 'mempool or preallocate']);
  const parts: string[] = [];
  if (mp) parts.push(`mempool: ${num(mp.metrics.txFailed)} failed transactions against ${num(ff.metrics.txFailed)} for fail-fast — its elements covered the log items, not the GFP_NOFS metadata reads`);
  let paCost = false;
  if (pa) {
    const base = ff.metrics.txPlentiful.p50;
    const p50 = pa.metrics.txPlentiful.p50;
    // Both margins: a slower p50 within noise of fail-fast's is no cost.
    const slowerBy = Math.max(COST_REL * base, COST_MIN_US);
    const timeCost = base > 0 && p50 - base >= slowerBy;
    const idleLimit = IDLE_SHARE * pa.totalPages;
    const memoryCost = pa.metrics.idleMean >= idleLimit;
    paCost = timeCost || memoryCost;
    parts.push(
      `preallocate: fs transaction service time p50 ${us(p50)} while memory was plentiful against ${us(base)} for fail-fast (${change(p50, base)}; ` +
        `a cost from ${us(base + slowerBy)}: ${timeCost ? 'costly' : 'within the margin'}), ` +
        `${num(pa.metrics.idleMean, 1)} preallocated pages unused on average (a cost from ${num(idleLimit, 1)}, ${pct(100 * IDLE_SHARE, 0)} of the pool: ${memoryCost ? 'costly' : 'below'}), ` +
        `${num(pa.metrics.txRefused)} transactions refused, ${num(pa.metrics.txFailed)} failed`,
    );
  }
  const mpFailed = mp !== undefined && mp.metrics.txFailed > 0;
  const verdict: Verdict = mpFailed && paCost ? 'observed' : mpFailed || paCost ? 'partly observed' : 'not observed';
  const rule =
    ` Rule: the mempool half holds when mempool failed transactions; the preallocation half when its service time p50 exceeds fail-fast's by ${pct(100 * COST_REL, 0)} and ${us(COST_MIN_US)} both, ` +
    `or its unused preallocated pages average ${pct(100 * IDLE_SHARE, 0)} of the pool; observed when both halves hold, partly when one does.`;
  return { claim, verdict, text: `${parts.join('. ')}.${rule}` };
}

/** What shows that a looping policy waited, against fail-fast in the same run (see WAIT_FACTOR). */
function waits(r: PolicyResult, base: PolicyResult | undefined): string[] {
  const out: string[] = [];
  const fsStalls = (x: PolicyResult) => x.workloads.fs?.stalls ?? 0;
  if (base !== undefined && base.metrics.tx.p99 > 0) {
    const limit = Math.max(WAIT_FACTOR * base.metrics.tx.p99, base.metrics.tx.p99 + WAIT_MIN_US);
    if (r.metrics.tx.p99 >= limit) out.push(`fs transaction p99 ${us(r.metrics.tx.p99)} >= ${us(limit)}`);
  }
  if (fsStalls(r) > (base ? fsStalls(base) : 0)) out.push(`${count(fsStalls(r), 'fs allocation')} over 1s`);
  if (r.metrics.livelocks > (base?.metrics.livelocks ?? 0)) out.push(count(r.metrics.livelocks, 'livelock'));
  return out;
}

function loops(pick: Pick): Finding {
  const claim = '__GFP_NOFAIL and the caller\'s retry loop trade failures for waits (the loop only moves)';
  const rs = ['nofail-flag', 'caller-retry'].map(pick).filter((r): r is PolicyResult => r !== undefined);
  if (rs.length === 0) return notRun(claim, ['nofail-flag or caller-retry']);
  const ff = pick('fail-fast');
  const waited = rs.map((r) => waits(r, ff));
  const parts = rs.map(
    (r, i) =>
      `${r.name}: ${num(r.metrics.txFailed)} failed transactions, fs transaction p99 ${us(r.metrics.tx.p99)}, ${count(r.workloads.fs?.stalls ?? 0, 'fs allocation')} over 1s, ` +
      `max allocation ${us(r.metrics.alloc.max)}, ${count(r.metrics.livelocks, 'livelock')}${r.name === 'caller-retry' ? `, ${r.metrics.canaries} "possible memory allocation deadlock" canaries` : ''}` +
      ` — ${waited[i]!.length ? `waited (${waited[i]!.join(', ')})` : 'no wait beyond the threshold'}`,
  );
  const ref = ff
    ? ` fail-fast, the same workload without the loop: ${num(ff.metrics.txFailed)} failed, fs transaction p99 ${us(ff.metrics.tx.p99)}, ${count(ff.workloads.fs?.stalls ?? 0, 'fs allocation')} over 1s, ${count(ff.metrics.livelocks, 'livelock')}.`
    : ' fail-fast did not run: only allocations over 1s and livelocks count as waits.';
  const all = waited.every((w) => w.length > 0);
  const some = waited.some((w) => w.length > 0);
  // Not failing is these policies' design; it can only lower the verdict.
  const noFail = rs.every((r) => r.metrics.txFailed === 0);
  const verdict: Verdict = all && noFail ? 'observed' : some ? 'partly observed' : 'not observed';
  const rule =
    ` Rule: a policy waited when its fs transaction p99 is at least ${WAIT_FACTOR}x fail-fast's and ${us(WAIT_MIN_US)} above it, or it had more fs allocations over 1s or more livelocks than fail-fast; ` +
    'observed when every looping policy waited and none failed a transaction, partly when some waited, not observed when none did.';
  return { claim, verdict, text: `${parts.join('. ')}.${ref}${rule}` };
}

export function findings(results: PolicyResult[], shape: Shape): Finding[] {
  const pick: Pick = (name) => results.find((r) => r.name === name && !r.partial) ?? results.find((r) => r.name === name);
  return [nofs(pick), livelock(pick, shape), timeout(pick, shape), reservations(pick), preallocation(pick), loops(pick)];
}
