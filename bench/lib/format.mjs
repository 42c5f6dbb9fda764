// Plain-text tables and number formats for the reports.

export function fmtNs(ns) {
  if (ns === undefined || Number.isNaN(ns)) return '-';
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(2)} µs`;
  return `${ns >= 100 ? ns.toFixed(0) : ns.toFixed(1)} ns`;
}

export function fmtRate(opsPerSec) {
  if (opsPerSec === undefined || Number.isNaN(opsPerSec)) return '-';
  if (opsPerSec >= 1e6) return `${(opsPerSec / 1e6).toFixed(2)} Mops/s`;
  if (opsPerSec >= 1e4) return `${(opsPerSec / 1e3).toFixed(0)} kops/s`;
  if (opsPerSec >= 1e3) return `${(opsPerSec / 1e3).toFixed(1)} kops/s`;
  return `${opsPerSec.toFixed(0)} ops/s`;
}

export function fmtRatio(x) {
  if (x === undefined || !Number.isFinite(x)) return '-';
  return `${x >= 10 ? x.toFixed(1) : x.toFixed(2)}x`;
}

/** Formats a result's median and spread according to its unit. */
export function fmtValue(r, v = r.median) {
  if (r.unit === 'ns/op') return fmtNs(v);
  if (r.unit === 'ops/s') return fmtRate(v);
  if (r.unit === '%') return `${v.toFixed(3)} %`;
  return String(v);
}

export function fmtSpread(r) {
  if (r.p25 === undefined) return '';
  return `${fmtValue(r, r.p25)} .. ${fmtValue(r, r.p75)}`;
}

/** rows: arrays of cells; a row that is a string is printed as a section line. */
export function table(header, rows) {
  const cells = rows.filter((r) => Array.isArray(r));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => String(r[i] ?? '').length)));
  const line = (r) => r.map((c, i) => String(c ?? '').padEnd(widths[i])).join('  ').trimEnd();
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of rows) out.push(Array.isArray(r) ? line(r) : r);
  return out.join('\n');
}
