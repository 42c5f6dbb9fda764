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
import { HOLDER_WAITED_US } from '../deadlock.js';
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

/** Which workload a task name ('user-2') belongs to. */
function workloadOf(task: string): string {
  return task.replace(/-\d+$/, '');
}

/** What the 2015 scene came to in one run, in words: who did what, and the measured times. */
export function describeDeadlock(r: PolicyResult): string {
  const d = r.deadlock;
  const cuer = d.cuer ?? 'the hog';
  const holder = d.holder ?? 'an fs transaction';
  const since = (t: number | null) => (t !== null && d.victimAtMs !== null ? ms(Math.max(0, t - d.victimAtMs)) : '?');
  const chosen = d.victimAtMs === null ? '' : d.victimBlocked ? `the OOM killer chose ${cuer}, blocked on that lock` : `the OOM killer chose ${cuer}`;
  switch (d.outcome) {
    case 'livelock':
      return (
        `${holder} held the fs lock for ${cuer}, which took the rest of memory and blocked on it; ${holder}'s allocation never completed; ` +
        (d.victimAtMs === null ? 'no OOM killer, so nobody was chosen' : `${chosen} and chose no one else while it was outstanding`) +
        `; no progress for the last ${ms(d.stalledAtEndMs)} of the run`
      );
    case 'stuck':
      return `${holder} never released the fs lock ${cuer} was blocked on${d.victimAtMs === null ? '' : ` (${chosen})`}, but other work went on`;
    case 'recovered': {
      const how =
        d.reapedAtMs !== null
          ? `the reaper took its pages ${since(d.reapedAtMs)} after the kill`
          : d.timedOutAtMs !== null
            ? `it outlived the victim timeout (${since(d.timedOutAtMs)} after the kill) and the OOM killer chose ${d.nextVictims.length ? d.nextVictims.join(', ') : 'no one else'}`
            : "the holder's allocations were satisfied without the victim's memory";
      return `${chosen} (held by ${holder}); ${how}; ${holder}'s transaction ${d.holderOutcome === 'ok' ? 'committed' : 'ended'} ${since(d.releasedAtMs)} after the kill`;
    }
    case 'failed':
      return `${holder}'s allocation failed with the fs lock held (ENOMEM): its transaction failed and the filesystem went read-only${chosen ? `; ${chosen}` : ''}`;
    case 'never happened':
      if (d.queuedAtMs === null) {
        return `${cuer}'s transaction ended before it reached the fs lock${d.victimAtMs === null ? '' : `; it was chosen as the OOM victim there, not blocked on a lock`}: no victim was ever blocked on the lock`;
      }
      if ((d.holderWaitUs ?? 0) < HOLDER_WAITED_US) {
        return `${holder}'s allocations never waited for memory (the longest took ${us(d.holderWaitUs ?? 0)}): ${cuer} was blocked on the lock only until ${holder}'s transaction ${d.holderOutcome === 'ok' ? 'committed' : 'ended'}`;
      }
      return `${cuer} got the fs lock before anyone was chosen: no victim was blocked on it`;
    case 'not staged':
      return d.cuer === null ? 'the scene was not staged in this run (no hog reached its share of the pool, or no hog in the mix)' : `the scene did not get as far as ${cuer}'s transaction in this run`;
  }
}

function livelock(pick: Pick, shape: Shape): Finding {
  const claim = "the looping allocator's livelock when the OOM victim is blocked on a lock (TIF_MEMDIE stall)";
  const ok = pick('oom-kill');
  const lp = pick('loop');
  if (ok === undefined && lp === undefined) return notRun(claim, ['oom-kill', 'loop']);
  const rs = [lp, ok].filter((r): r is PolicyResult => r !== undefined);
  const holds = (r: PolicyResult) => r.deadlock.outcome === 'livelock' && (r.name === 'loop' || r.deadlock.victimBlocked);
  const parts = rs.map((r) => `${r.name}: ${r.deadlock.outcome} — ${describeDeadlock(r)}`);
  const all = rs.every(holds);
  const verdict: Verdict = all ? 'observed' : rs.some(holds) ? 'partly observed' : 'not observed';
  const rule =
    ` Rule: observed when, under oom-kill, the OOM victim was blocked on the fs lock held by a transaction whose allocation never completed, and nothing made progress for at least the watchdog time (${ms(shape.watchdogMs)}) up to the end of the run — and loop (no OOM killer) ended the same way; ` +
    'partly when only one of them did.';
  return { claim, verdict, text: `${parts.join('. ')}.${rule}` };
}

function timeout(pick: Pick, shape: Shape): Finding {
  const claim = "the victim timeout's extra kills (Weiner 2015, against the reaper)";
  const to = pick('oom-timeout');
  if (to === undefined) return notRun(claim, ['oom-timeout']);
  const d = to.deadlock;
  const reaper = pick('oom-reaper');
  const limit = ms(5000 * shape.timeScale);
  const bystanders = d.nextVictims.filter((v) => workloadOf(v) !== 'hog');
  const outlived = d.timedOutAtMs !== null;
  const verdict: Verdict = outlived && bystanders.length > 0 && d.outcome === 'recovered' ? 'observed' : outlived ? 'partly observed' : 'not observed';
  const ref = reaper ? ` oom-reaper: ${reaper.deadlock.outcome} — ${describeDeadlock(reaper)}; ${count(reaper.metrics.bystanderKills, 'bystander')} killed in the run.` : '';
  const text =
    `oom-timeout: ${d.outcome} — ${describeDeadlock(to)}; ${count(to.metrics.bystanderKills, 'bystander')} killed in the run` +
    `${outlived ? '' : '; no victim stayed past the timeout, so the timeout never chose another'}.${ref}`;
  const rule =
    ` Rule: observed when oom-timeout's victim, blocked on the lock, outlived the ${limit} timeout, the OOM killer then chose a task that was not the hog, and the lock was released (recovery); ` +
    'partly when the victim outlived the timeout without both.';
  return { claim, verdict, text: `${text}${rule}` };
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
      `${num(r.vmstat.reserve_waits ?? 0)} reservations had to wait, fs transaction p99 ${us(m.tx.p99)} against ${us(base.tx.p99)}; ` +
      `the 2015 scene: ${r.deadlock.outcome} — ${describeDeadlock(r)}`
    );
  });
  const guaranteed = rs.every((r) => r.metrics.txFailed === 0);
  const blocked = rs.some((r) => r.deadlock.victimBlocked);
  const verdict: Verdict = base.txFailed === 0 ? 'not observed' : guaranteed && !blocked ? 'observed' : 'partly observed';
  const tail =
    base.txFailed === 0
      ? ' fail-fast did not fail either, so the guarantee was not put to the test.'
      : `${guaranteed ? ' No reserved transaction failed' : ' Some reserved transactions failed'}${blocked ? ', and an OOM victim was blocked on the fs lock.' : ', and no OOM victim was blocked on the fs lock.'}`;
  const rule =
    ' Rule: observed when fail-fast failed transactions, no reserved one did, and no OOM victim was blocked on the fs lock under a reservation; partly when reserved ones failed or a victim was blocked; not observed when fail-fast failed none.';
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

/** The findings of one round: one run per policy, all with the same seed (a run whose hook threw does not count). */
export function findings(results: readonly PolicyResult[], shape: Shape): Finding[] {
  const ok = results.filter((r) => r.failure === null);
  const pick: Pick = (name) => ok.find((r) => r.name === name && !r.partial) ?? ok.find((r) => r.name === name);
  return [nofs(pick), livelock(pick, shape), timeout(pick, shape), reservations(pick), preallocation(pick), loops(pick)];
}

/** A finding over every round: its verdict in each, and how many observed it. */
export interface FindingOverRuns extends Finding {
  /** Runs (rounds) that observed it, and rounds in which its policies ran. */
  observed: number;
  /** Rounds that partly observed it. */
  partly: number;
  runs: number;
  perRun: Array<{ seed: number; verdict: Verdict; text: string }>;
}

/** "observed in 2 of 3 runs, partly in 1"; '' for a finding that did not run. */
export function runsNote(f: { observed: number; partly: number; runs: number }): string {
  if (f.runs === 0) return '';
  return `observed in ${f.observed} of ${f.runs} run${f.runs === 1 ? '' : 's'}${f.partly ? `, partly in ${f.partly}` : ''}`;
}

/**
 * Each finding over the rounds (one per seed): "observed in k of N runs".
 * Observed when every round observed it; partly when some did (or some
 * partly did); not observed when none did; not run when no round had its
 * policies.
 */
export function findingsOverRuns(results: readonly PolicyResult[], shapeFor: (seed: number) => Shape): FindingOverRuns[] {
  const seeds = [...new Set(results.map((r) => r.seed))];
  const rounds = seeds.map((seed) => ({ seed, list: findings(results.filter((r) => r.seed === seed), shapeFor(seed)) }));
  const empty = findings([], shapeFor(seeds[0] ?? 0));
  return empty.map((blank, i) => {
    const perRun = rounds.map(({ seed, list }) => ({ seed, verdict: list[i]!.verdict, text: list[i]!.text })).filter((x) => x.verdict !== 'not run');
    const observed = perRun.filter((x) => x.verdict === 'observed').length;
    const n = perRun.length;
    if (n === 0) return { ...blank, observed: 0, partly: 0, runs: 0, perRun: [] };
    const verdict: Verdict = observed === n ? 'observed' : observed > 0 || perRun.some((x) => x.verdict === 'partly observed') ? 'partly observed' : 'not observed';
    const partly = perRun.filter((x) => x.verdict === 'partly observed').length;
    const f = { claim: blank.claim, verdict, observed, partly, runs: n, perRun };
    const head = `${verdict[0]!.toUpperCase()}${verdict.slice(1)}: ${runsNote(f)}${n === 1 ? ' (one run: no repeat to confirm it)' : ''}.`;
    return { ...f, text: `${head} Run 1 (seed ${perRun[0]!.seed}): ${perRun[0]!.text}` };
  });
}
