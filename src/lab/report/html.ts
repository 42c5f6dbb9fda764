/**
 * report.html: one self-contained page — inline CSS and SVG, no network.
 * Every table fits a 1280 px window: cells wrap (a range goes on a second
 * line), wide tables are split by topic, and each sits in a box of its own
 * that would scroll rather than widen the page. A few lines of inline
 * script count the charts that rendered with a size and put the number on
 * <body data-charts-rendered>, so a headless browser can check that they
 * are visible.
 */
import type { PolicyResult } from '../collect.js';
import { describeDeadlock, type FindingOverRuns, runsNote } from './findings.js';
import { type Cell, type Column, COLUMNS, deadlockCell, msOfUs, num, spreadCell } from './format.js';
import { optionsLine } from './markdown.js';
import { type LabReport, policiesOf } from './model.js';
import type { MetricKey, PolicySummary } from './stats.js';
import { latencyChart, memoryChart, PALETTE } from './svg.js';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const CSS = `
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;padding:0 16px;color:#222;max-width:1200px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.box{max-width:100%;overflow-x:auto}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;width:100%}
th,td{padding:4px 6px;border-bottom:1px solid #eee;text-align:right;vertical-align:top}
th{background:#f4f4f4;font-weight:600;font-size:13px;white-space:normal}
th:first-child,td:first-child{text-align:left}td.text,th.text{text-align:left}
td .range{display:block;color:#777;font-size:11px;white-space:nowrap}
.verdict{font-weight:600}.observed{color:#2a7a2a}.partly{color:#b07000}.not{color:#a33}
.grid{display:flex;flex-wrap:wrap;gap:12px}.muted{color:#666}ul.findings li{margin:6px 0}
details{margin:4px 0}pre{white-space:pre-wrap;overflow-wrap:anywhere;font-size:12px;background:#f8f8f8;padding:6px}
`;

const SCRIPT = `addEventListener('load',()=>{let n=0;for(const s of document.querySelectorAll('svg.chart')){const b=s.getBoundingClientRect();if(b.width>0&&b.height>0&&s.querySelector('.series'))n++}document.body.dataset.chartsRendered=String(n)})`;

function verdictClass(v: string): string {
  return v === 'observed' ? 'observed' : v === 'partly observed' ? 'partly' : 'not';
}

function cellHtml(c: Cell): string {
  return `${esc(c.value)}${c.range === null ? '' : `<span class="range">${esc(c.range)}</span>`}`;
}

function table(cls: string, columns: readonly Column[], policies: readonly PolicySummary[]): string {
  const head = columns.map((c) => `<th title="${esc(c.help)}">${esc(c.header)}</th>`).join('');
  const rows = policies.map((p) => `<tr>${columns.map((c) => `<td>${cellHtml(c.cell(p))}</td>`).join('')}</tr>`).join('\n');
  return `<div class="box"><table class="${cls}"><thead><tr>${head}</tr></thead>\n<tbody>\n${rows}\n</tbody></table></div>`;
}

const col = (header: string, help: string, key: MetricKey, fmt: (v: number) => string): Column => ({ header, help, cell: (p) => spreadCell(p.spread[key], fmt) });
const int = (v: number) => num(v);
const POLICY = COLUMNS[0]!;

/** "More per policy", split by topic so that each fits. */
const LATENCY_COLUMNS: Column[] = [
  POLICY,
  col('tx p50 (ms)', 'fs transaction latency from its scheduled start, median', 'txP50', msOfUs),
  col('tx p99 (ms)', 'fs transaction latency from its scheduled start, 99th percentile', 'txP99', msOfUs),
  col('tx service p50, plentiful (ms)', 'fs transaction service time (begin to commit) while memory was plentiful, median', 'txPlentifulP50', msOfUs),
  col('alloc p50 (ms)', 'allocation latency, median', 'allocP50', msOfUs),
  col('alloc p99.9 (ms)', 'allocation latency, 99.9th percentile', 'allocP999', msOfUs),
  col('refused tx', 'fs transactions refused before they began (read-only, or the policy could not begin)', 'txRefused', int),
  col('read-only (times)', 'times the filesystem went read-only after a failed transaction', 'readOnlyFlips', int),
  col('PSI full (%)', 'PSI memory: share of the run with every task stalled', 'psiFullPct', (v) => num(v, 1)),
  col('peak use (%)', 'peak share of the pool in use', 'peakUsePct', (v) => num(v, 0)),
];

const OOM_COLUMNS: Column[] = [
  POLICY,
  COLUMNS.find((c) => c.cell === deadlockCell)!,
  col('victims blocked on a lock', 'OOM victims that were blocked on a lock (chosen while waiting, or blocked on their way out)', 'victimsBlockedOnLock', int),
  col('never exited', 'OOM victims still alive at the end of the run', 'victimsNeverExited', int),
  col('slowest exit (ms)', 'longest time from a kill to its victim’s exit', 'victimExitMaxMs', int),
  col('reaped', 'victims whose pages the OOM reaper took', 'reaped', int),
  col('timed out', 'victims that outlived the victim timeout', 'victimTimeouts', int),
  col('no progress, longest (ms)', 'longest stretch with no successful fs, user or hog operation', 'longestNoProgressMs', int),
  col('net bursts dropped', 'GFP_ATOMIC bursts that failed', 'netDrops', int),
  col('canaries', '"possible memory allocation deadlock" warnings', 'canaries', int),
];

function deadlockTable(policies: readonly PolicySummary[]): string {
  const rows = policies
    .map((p) => {
      const first = p.runs.find((r) => r.failure === null);
      return `<tr><td>${esc(p.name)}</td><td class="text">${cellHtml(deadlockCell(p))}</td><td class="text">${esc(p.system)}</td><td class="text">${first ? esc(describeDeadlock(first)) : '-'}</td></tr>`;
    })
    .join('\n');
  return (
    `<div class="box"><table class="deadlock"><thead><tr><th>policy</th><th class="text" title="in how many runs">outcome (runs)</th><th class="text">system</th><th class="text">what happened (first run)</th></tr></thead>\n<tbody>\n${rows}\n</tbody></table></div>`
  );
}

function finding(f: FindingOverRuns): string {
  const runs = f.perRun.length
    ? `<details><summary>each run</summary><ul>${f.perRun.map((x) => `<li>seed ${x.seed}: <span class="verdict ${verdictClass(x.verdict)}">${esc(x.verdict)}</span>. ${esc(x.text)}</li>`).join('')}</ul></details>`
    : '';
  return `<li><b>${esc(f.claim)}</b> — <span class="verdict ${verdictClass(f.verdict)}">${esc(f.verdict)}</span>${f.runs ? ` (${runsNote(f)})` : ''}. ${esc(f.perRun.length ? (f.perRun[0]!.text) : f.text)}${runs}</li>`;
}

function failures(policies: readonly PolicySummary[]): string {
  const failed = policies.filter((p) => p.failure !== null);
  if (failed.length === 0) return '';
  return (
    '<h2>Failed policies</h2>\n' +
    failed
      .map((p) => {
        const f = p.failure!;
        return `<p><b>${esc(p.name)}</b>: ${esc(f.module)} — hook <code>${esc(f.hook)}</code> threw in ${esc(f.where)}: ${esc(f.message)}</p><pre>${esc(f.stack)}</pre>`;
      })
      .join('\n')
  );
}

export function renderHtml(r: LabReport): string {
  const policies = policiesOf(r);
  const firsts: PolicyResult[] = policies.map((p) => p.runs.find((x) => x.failure === null)).filter((x): x is PolicyResult => x !== undefined);
  const memory = firsts.map((p, i) => memoryChart(p, PALETTE[i % PALETTE.length]!)).join('\n');
  const criteria = r.criteria.map((c) => `<li><b>${esc(c.criterion)}</b>: ${esc(c.text)}</li>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>nofail lab: ${esc(r.command)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${CSS}</style></head>
<body data-charts="${firsts.length + 1}">
<h1>nofail lab: ${esc(r.command)}${r.partial ? ' (partial: interrupted)' : ''}</h1>
<p class="muted">${esc(r.createdAt)} — ${esc(optionsLine(r))}</p>
<h2>Policies × metrics</h2>
${table('main', COLUMNS, policies)}
<p class="muted">Each cell: the median over the runs, and below it their min–max where they differ. Hover a header for what it measures. Latencies are per allocation, all workloads, corrected for coordinated omission.</p>
<h2>The 2015 deadlock, per policy</h2>
<p class="muted">The hog takes the rest of memory while an fs transaction holds the fs lock for it, then blocks on that lock: the OOM victim-to-be waits for a task whose allocation cannot be satisfied. What each policy makes of it:</p>
${deadlockTable(policies)}
<h2>Summary by criterion</h2>
<ul class="criteria">
${criteria}
</ul>
<p class="muted">A policy is named only where its range over the runs overlaps no other policy's.</p>
<h2>Findings</h2>
<ul class="findings">
${r.findings.map(finding).join('\n')}
</ul>
${failures(policies)}
<h2>Allocation latency by percentile (first run of each policy)</h2>
<div class="box">${latencyChart(firsts)}</div>
<h2>Free pages over time (first run of each policy)</h2>
<p class="muted">Free pages (line) over the whole pool, and in the inset below each chart the bottom of the range: the min/low/high watermarks (dashed) and the pages reserved or set aside by the policy (purple). Shaded: no progress (red), read-only filesystem (orange band).</p>
<div class="grid">
${memory}
</div>
<h2>More per policy</h2>
<h3>Latency and the filesystem</h3>
${table('latency', LATENCY_COLUMNS, policies)}
<h3>OOM killer</h3>
${table('oom', OOM_COLUMNS, policies)}
<p class="muted">Every run's figures are in report.json (runs) and report.md.</p>
<script>${SCRIPT}</script>
</body></html>
`;
}
