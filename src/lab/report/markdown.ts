/** report.md: the table, the findings, per-policy details. */
import { COLUMNS, ms, num, us } from './format.js';
import type { LabReport } from './model.js';

export function optionsLine(r: LabReport): string {
  const o = r.options;
  return (
    `${o.workers} workers (${o.workloads.join(',')}), pool ${o.poolBytes / 1024 / 1024} MiB, ${o.durationMs / 1000} s per policy, seed ${o.seed}, ` +
    `OOM timers × ${o.timeScale}; Node ${r.machine.node}, ${r.machine.cpus} CPUs`
  );
}

export function renderMarkdown(r: LabReport): string {
  const out: string[] = [];
  out.push(`# nofail lab: ${r.command}${r.partial ? ' (partial: interrupted)' : ''}`, '');
  out.push(`${r.createdAt} — ${optionsLine(r)}`, '');
  out.push(`| ${COLUMNS.map((c) => c.header).join(' | ')} |`);
  out.push(`|${COLUMNS.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`);
  for (const p of r.policies) out.push(`| ${COLUMNS.map((c) => c.value(p)).join(' | ')} |`);
  out.push('', 'Columns: ' + COLUMNS.slice(1).map((c) => `**${c.header}** ${c.help}`).join('; ') + '.', '');
  out.push('## Findings', '');
  for (const f of r.findings) out.push(`- **${f.claim}** — *${f.verdict}*. ${f.text}`);
  out.push('', '## Policies', '');
  for (const p of r.policies) {
    const m = p.metrics;
    out.push(`### ${p.name}${p.partial ? ' (interrupted)' : ''}`, '', `${p.summary}. System: ${p.system}.`, '');
    out.push(
      `- fs: ${num(m.txCommitted)} committed, ${num(m.txFailed)} failed, ${num(m.txRefused)} refused; transaction latency p50 ${us(m.tx.p50)}, p99 ${us(m.tx.p99)} (service time p50 while memory was plentiful ${us(m.txPlentiful.p50)})`,
      `- OOM: ${m.oomKills} kills (${m.nonHogKills} not the hog, ${m.victimsBlockedOnLock} victims waiting for a lock, ${m.victimsNeverExited} never exited, slowest exit ${ms(m.victimExitMaxMs)}), ${m.reaped} reaped, ${m.victimTimeouts} timed out`,
      `- net: ${num(m.netDrops)} of ${num(m.netBursts)} bursts dropped; allocation failures ${num(m.allocFails)}; deadlock canaries ${m.canaries}; worker errors ${m.errors}`,
    );
    for (const [w, s] of Object.entries(p.workloads)) {
      // firstDigest is absent from reports saved before it existed.
      const first = s.firstDigest === undefined ? '' : `; first ${s.firstOps} per worker ${s.firstDigest}`;
      out.push(`- ${w} ×${s.workers}: ${s.issued} ops issued (digest ${s.digest}${first}), ${s.ok} ok, ${s.failed} failed, ${s.refused} refused; allocation p99 ${us(s.alloc.p99)}`);
    }
    if (p.errors.length) out.push(`- errors: ${p.errors.join('; ')}`);
    out.push('');
  }
  return out.join('\n');
}
