/**
 * Findings: what each claim of the 2015 discussion looks like in this run.
 * Every sentence is a template filled from the results; a claim the data
 * does not support is stated as not observed, and a claim whose policies
 * did not run is stated as not run. Nothing here is written in advance.
 */
import type { PolicyResult } from '../collect.js';
import type { Shape } from '../config.js';
import { ms, num, us } from './format.js';

export type Verdict = 'observed' | 'partly observed' | 'not observed' | 'not run';

export interface Finding {
  claim: string;
  verdict: Verdict;
  text: string;
}

type Pick = (name: string) => PolicyResult | undefined;

function notRun(claim: string, names: string[]): Finding {
  return { claim, verdict: 'not run', text: `Needs ${names.join(', ')}; not in this run.` };
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
  if (m.txFailed === 0) {
    return { claim, verdict: 'not observed', text: `fail-fast (linux-3.19): no fs transaction failed; its GFP_NOFS allocations always found reclaimable memory in this run.${refText}` };
  }
  return {
    claim,
    verdict: 'observed',
    text:
      `fail-fast (linux-3.19): ${num(m.txFailed)} fs transactions failed part-way with ENOMEM (${num(ff.workloads.fs?.allocFails ?? 0)} failed GFP_NOFS allocations); ` +
      `the filesystem went read-only ${num(m.readOnlyFlips)} time${m.readOnlyFlips === 1 ? '' : 's'} and refused ${num(m.txRefused)} transactions while read-only, ` +
      `committing ${num(m.txPerSec)} tx/s.${refText}`,
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
  const text = `oom-kill (linux-4.0, no reaper): ${blockedText}; the watchdog saw ${m.livelocks} livelock(s), the longest ${ms(m.longestNoProgressMs)} without progress.${cmp}`;
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
  return { claim, verdict, text: verdict === 'not observed' ? `${text} No victim stayed past the timeout, so the timeout never chose another.` : text };
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
  return { claim, verdict, text: `${parts.join('. ')}.${tail}` };
}

function preallocation(pick: Pick): Finding {
  const claim = "mempools and preallocation (Chinner: preallocation is costly, and demand-paged metadata escapes it)";
  const ff = pick('fail-fast');
  const mp = pick('mempool');
  const pa = pick('preallocate');
  if (ff === undefined || (mp === undefined && pa === undefined)) return notRun(claim, ['fail-fast', 'mempool or preallocate']);
  const parts: string[] = [];
  if (mp) parts.push(`mempool: ${num(mp.metrics.txFailed)} failed transactions against ${num(ff.metrics.txFailed)} for fail-fast — its elements covered the log items, not the GFP_NOFS metadata reads`);
  if (pa) {
    parts.push(
      `preallocate: fs transaction service time p50 ${us(pa.metrics.txPlentiful.p50)} while memory was plentiful against ${us(ff.metrics.txPlentiful.p50)} (${change(pa.metrics.txPlentiful.p50, ff.metrics.txPlentiful.p50)}), ` +
        `${num(pa.metrics.idleMean, 1)} preallocated pages unused on average, ${num(pa.metrics.txRefused)} transactions refused, ${num(pa.metrics.txFailed)} failed`,
    );
  }
  const mpFailed = mp !== undefined && mp.metrics.txFailed > 0;
  const paCost = pa !== undefined && pa.metrics.txPlentiful.p50 > ff.metrics.txPlentiful.p50;
  const verdict: Verdict = mpFailed && paCost ? 'observed' : mpFailed || paCost ? 'partly observed' : 'not observed';
  return { claim, verdict, text: `${parts.join('. ')}.` };
}

function loops(pick: Pick): Finding {
  const claim = '__GFP_NOFAIL and the caller\'s retry loop trade failures for waits (the loop only moves)';
  const rs = ['nofail-flag', 'caller-retry'].map(pick).filter((r): r is PolicyResult => r !== undefined);
  if (rs.length === 0) return notRun(claim, ['nofail-flag or caller-retry']);
  const parts = rs.map(
    (r) =>
      `${r.name}: ${num(r.metrics.txFailed)} failed transactions, fs transaction p99 ${us(r.metrics.tx.p99)}, max allocation ${us(r.metrics.alloc.max)}, ` +
      `${r.metrics.livelocks} livelock(s)${r.name === 'caller-retry' ? `, ${r.metrics.canaries} "possible memory allocation deadlock" canaries` : ''}`,
  );
  const noFail = rs.every((r) => r.metrics.txFailed === 0);
  const waited = rs.some((r) => r.metrics.livelocks > 0 || r.metrics.stalls > 0 || r.metrics.tx.p99 > 100_000);
  const verdict: Verdict = noFail && waited ? 'observed' : noFail || waited ? 'partly observed' : 'not observed';
  return { claim, verdict, text: `${parts.join('. ')}.` };
}

export function findings(results: PolicyResult[], shape: Shape): Finding[] {
  const pick: Pick = (name) => results.find((r) => r.name === name && !r.partial) ?? results.find((r) => r.name === name);
  return [nofs(pick), livelock(pick, shape), timeout(pick, shape), reservations(pick), preallocation(pick), loops(pick)];
}
