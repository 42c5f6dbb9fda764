/**
 * report.html: one self-contained page — inline CSS and SVG, no network.
 * A few lines of inline script count the charts that rendered with a size
 * and put the number on <body data-charts-rendered>, so a headless browser
 * (the test) can check that they are visible.
 */
import type { Finding } from './findings.js';
import { COLUMNS, ms, num, us } from './format.js';
import { optionsLine } from './markdown.js';
import type { LabReport } from './model.js';
import { latencyChart, memoryChart, PALETTE } from './svg.js';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}th,td{padding:4px 8px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}th{background:#f4f4f4;cursor:help}
.verdict{font-weight:600}.observed{color:#2a7a2a}.partly{color:#b07000}.not{color:#a33}
.grid{display:flex;flex-wrap:wrap;gap:12px}.muted{color:#666}ul.findings li{margin:6px 0}
`;

const SCRIPT = `addEventListener('load',()=>{let n=0;for(const s of document.querySelectorAll('svg.chart')){const b=s.getBoundingClientRect();if(b.width>0&&b.height>0&&s.querySelector('.series'))n++}document.body.dataset.chartsRendered=String(n)})`;

function verdictClass(f: Finding): string {
  return f.verdict === 'observed' ? 'observed' : f.verdict === 'partly observed' ? 'partly' : 'not';
}

export function renderHtml(r: LabReport): string {
  const rows = r.policies.map((p) => `<tr>${COLUMNS.map((c) => `<td>${esc(c.value(p))}</td>`).join('')}</tr>`).join('\n');
  const details = r.policies
    .map((p) => {
      const m = p.metrics;
      return (
        `<tr><td>${esc(p.name)}</td><td>${esc(p.system)}</td><td>${num(m.txRefused)}</td><td>${us(m.tx.p50)}</td><td>${us(m.tx.p99)}</td><td>${us(m.txPlentiful.p50)}</td>` +
        `<td>${m.victimsBlockedOnLock}</td><td>${m.victimsNeverExited}</td><td>${ms(m.victimExitMaxMs)}</td><td>${m.reaped}</td><td>${m.victimTimeouts}</td>` +
        `<td>${num(m.netDrops)}/${num(m.netBursts)}</td><td>${m.canaries}</td><td>${m.errors}</td></tr>`
      );
    })
    .join('\n');
  const memory = r.policies.map((p, i) => memoryChart(p, PALETTE[i % PALETTE.length]!)).join('\n');
  const findings = r.findings
    .map((f) => `<li><b>${esc(f.claim)}</b> — <span class="verdict ${verdictClass(f)}">${esc(f.verdict)}</span>. ${esc(f.text)}</li>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>nofail lab: ${esc(r.command)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${CSS}</style></head>
<body data-charts="${r.policies.length + 1}">
<h1>nofail lab: ${esc(r.command)}${r.partial ? ' (partial: interrupted)' : ''}</h1>
<p class="muted">${esc(r.createdAt)} — ${esc(optionsLine(r))}</p>
<h2>Policies × metrics</h2>
<table><thead><tr>${COLUMNS.map((c) => `<th title="${esc(c.help)}">${esc(c.header)}</th>`).join('')}</tr></thead>
<tbody>
${rows}
</tbody></table>
<p class="muted">Hover a header for what it measures. Latencies are per allocation, all workloads, corrected for coordinated omission.</p>
<h2>Findings</h2>
<ul class="findings">
${findings}
</ul>
<h2>Allocation latency by percentile</h2>
${latencyChart(r.policies)}
<h2>Free pages over time</h2>
<p class="muted">Free pages (line), the min/low/high watermarks (dashed), pages reserved or set aside (purple), read-only filesystem (orange band), no progress (red shade).</p>
<div class="grid">
${memory}
</div>
<h2>More per policy</h2>
<table><thead><tr><th>policy</th><th>system</th><th>refused</th><th>tx p50</th><th>tx p99</th><th>tx service p50, plentiful</th><th>victims on lock</th><th>never exited</th><th>slowest exit</th><th>reaped</th><th>timed out</th><th>net dropped</th><th>canaries</th><th>errors</th></tr></thead>
<tbody>
${details}
</tbody></table>
<script>${SCRIPT}</script>
</body></html>
`;
}
