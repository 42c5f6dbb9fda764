/** report.md: the table, the 2015 deadlock per policy, the summary by criterion, the findings, each run's details. */
import { describeDeadlock, runsNote } from './findings.js';
import { type Cell, COLUMNS, deadlockCell, ms, num, us } from './format.js';
import { type LabReport, policiesOf } from './model.js';

export function optionsLine(r: LabReport): string {
  const o = r.options;
  const seeds = o.repeat === 1 ? `seed ${o.seed}` : `seeds ${o.seed}–${o.seed + o.repeat - 1}`;
  return (
    `${o.workers} workers (${o.workloads.join(',')}), pool ${o.poolBytes / 1024 / 1024} MiB, ${o.durationMs / 1000} s per run, ` +
    `${o.repeat} run${o.repeat === 1 ? '' : 's'} per policy (${seeds})${o.quick ? ', --quick' : ''}, OOM timers × ${o.timeScale}; ` +
    `Node ${r.machine.node}, ${r.machine.cpus} CPUs; took ${num(r.elapsedS, 1)} s`
  );
}

function cellText(c: Cell): string {
  return c.range === null ? c.value : `${c.value} (${c.range})`;
}

export function renderMarkdown(r: LabReport): string {
  const policies = policiesOf(r);
  const out: string[] = [];
  out.push(`# nofail lab: ${r.command}${r.partial ? ' (partial: interrupted)' : ''}`, '');
  out.push(`${r.createdAt} — ${optionsLine(r)}`, '');
  out.push(`| ${COLUMNS.map((c) => c.header).join(' | ')} |`);
  out.push(`|${COLUMNS.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`);
  for (const p of policies) out.push(`| ${COLUMNS.map((c) => cellText(c.cell(p))).join(' | ')} |`);
  out.push('', `Each cell: the median over the runs, and in brackets their min–max where they differ. Columns: ${COLUMNS.slice(1).map((c) => `**${c.header}** ${c.help}`).join('; ')}.`, '');

  out.push('## The 2015 deadlock, per policy', '');
  out.push('The hog takes the rest of memory while an fs transaction holds the fs lock for it, then blocks on that lock (workloads/scene.ts); what each policy makes of it:', '');
  out.push('| policy | outcome (runs) | run 1 |', '| --- | --- | --- |');
  for (const p of policies) {
    const first = p.runs.find((x) => x.failure === null);
    out.push(`| ${p.name} | ${cellText(deadlockCell(p))} | ${first ? describeDeadlock(first) : '-'} |`);
  }
  out.push('');

  out.push('## Summary by criterion', '');
  for (const c of r.criteria) out.push(`- **${c.criterion}**: ${c.text}`);
  out.push('', 'A policy is named only where its range over the runs overlaps no other policy\'s.', '');

  out.push('## Findings', '');
  for (const f of r.findings) {
    out.push(`- **${f.claim}** — *${f.verdict}*${f.runs ? ` (${runsNote(f)})` : ''}. ${f.perRun.length ? '' : f.text}`);
    for (const x of f.perRun) out.push(`  - seed ${x.seed}: *${x.verdict}*. ${x.text}`);
  }

  out.push('', '## Policies', '');
  for (const p of policies) {
    out.push(`### ${p.name}${p.module ? ` (${p.module})` : ''}`, '', `${p.summary}. System: ${p.system}.`, '');
    if (p.failure) {
      const f = p.failure;
      out.push(`**Failed**: ${f.module}: hook \`${f.hook}\` threw in ${f.where}: ${f.message}`, '', '```', f.stack, '```', '');
    }
    for (const run of p.runs) {
      const m = run.metrics;
      out.push(`#### seed ${run.seed}${run.partial ? ' (interrupted)' : ''}${run.failure ? ' (failed)' : ''}`, '');
      if (run.failure) {
        out.push(`- ${run.failure.module}: hook \`${run.failure.hook}\` threw in ${run.failure.where}: ${run.failure.message}`, '');
        continue;
      }
      out.push(
        `- fs: ${num(m.txCommitted)} committed, ${num(m.txFailed)} failed, ${num(m.txRefused)} refused; transaction latency p50 ${us(m.tx.p50)}, p99 ${us(m.tx.p99)} (service time p50 while memory was plentiful ${us(m.txPlentiful.p50)})`,
        `- 2015 deadlock: ${run.deadlock.outcome} — ${describeDeadlock(run)}`,
        `- OOM: ${m.oomKills} kills (${m.bystanderKills} bystanders, ${m.victimsBlockedOnLock} victims blocked on a lock, ${m.victimsNeverExited} never exited, slowest exit ${ms(m.victimExitMaxMs)}), ${m.reaped} reaped, ${m.victimTimeouts} timed out`,
        `- net: ${num(m.netDrops)} of ${num(m.netBursts)} bursts dropped; allocation failures ${num(m.allocFails)}; deadlock canaries ${m.canaries}`,
      );
      for (const [w, s] of Object.entries(run.workloads)) {
        out.push(`- ${w} ×${s.workers}: ${s.issued} ops issued (digest ${s.digest}; first ${s.firstOps} per worker ${s.firstDigest}), ${s.ok} ok, ${s.failed} failed, ${s.refused} refused; allocation p99 ${us(s.alloc.p99)}`);
      }
      out.push('');
    }
  }
  return out.join('\n');
}
