/**
 * Inline SVG charts for report.html: no script, no network, no library.
 *   latencyChart  allocation latency by percentile, one line per policy
 *                 (x: 0, 90, 99, 99.9 … on a log scale of 1/(1 − p); y: log µs)
 *   memoryChart   free pages over time for one policy, with the watermarks,
 *                 pages set aside, read-only and no-progress periods shaded
 */
import type { PolicyResult } from '../collect.js';
import { us } from './format.js';

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#393b79', '#637939'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const f = (v: number) => (Math.round(v * 10) / 10).toString();

export function latencyChart(results: PolicyResult[]): string {
  const W = 720;
  const H = 360;
  const m = { l: 60, r: 170, t: 20, b: 40 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const xOf = (p: number) => Math.log10(1 / Math.max(1e-5, 1 - p / 100)); // 0 .. 5
  const xMax = 5;
  const all = results.flatMap((r) => r.metrics.alloc.curve.map(([, v]) => v)).filter((v) => v > 0);
  const yMin = Math.max(1, Math.min(...all, 1));
  const yMax = Math.max(10, ...all);
  const lo = Math.floor(Math.log10(yMin));
  const hi = Math.ceil(Math.log10(yMax));
  const X = (p: number) => m.l + (Math.min(xOf(p), xMax) / xMax) * pw;
  const Y = (v: number) => m.t + ph - ((Math.log10(Math.max(v, yMin)) - lo) / Math.max(1, hi - lo)) * ph;
  const out: string[] = [];
  out.push(`<svg class="chart latency" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="allocation latency by percentile">`);
  out.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="#fafafa" stroke="#ccc"/>`);
  for (let e = lo; e <= hi; e++) {
    const y = Y(10 ** e);
    out.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${f(y)}" y2="${f(y)}" stroke="#e4e4e4"/><text x="${m.l - 6}" y="${f(y + 4)}" text-anchor="end" font-size="11">${us(10 ** e)}</text>`);
  }
  for (const [p, label] of [[0, '0%'], [90, '90%'], [99, '99%'], [99.9, '99.9%'], [99.99, '99.99%'], [99.999, '99.999%']] as const) {
    const x = X(p);
    out.push(`<line x1="${f(x)}" x2="${f(x)}" y1="${m.t}" y2="${m.t + ph}" stroke="#e4e4e4"/><text x="${f(x)}" y="${m.t + ph + 16}" text-anchor="middle" font-size="11">${label}</text>`);
  }
  out.push(`<text x="${m.l + pw / 2}" y="${H - 6}" text-anchor="middle" font-size="12">percentile</text>`);
  results.forEach((r, i) => {
    const pts = r.metrics.alloc.curve.filter(([p]) => p < 100).map(([p, v]) => `${f(X(p))},${f(Y(v))}`);
    const color = PALETTE[i % PALETTE.length]!;
    if (pts.length > 1) out.push(`<polyline class="series" fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"><title>${esc(r.name)}</title></polyline>`);
    const ly = m.t + 10 + i * 16;
    out.push(`<line x1="${W - m.r + 12}" x2="${W - m.r + 32}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="3"/><text x="${W - m.r + 38}" y="${ly + 4}" font-size="11">${esc(r.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('');
}

export function memoryChart(r: PolicyResult, color: string): string {
  const W = 340;
  const H = 170;
  const m = { l: 44, r: 8, t: 18, b: 24 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const tl = r.timeline;
  const tMax = Math.max(1, ...tl.map((s) => s.t));
  const total = r.totalPages;
  const X = (t: number) => m.l + (t / tMax) * pw;
  const Y = (p: number) => m.t + ph - (Math.min(p, total) / total) * ph;
  const out: string[] = [];
  out.push(`<svg class="chart memory" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="free pages over time: ${esc(r.name)}">`);
  out.push(`<text x="${m.l}" y="12" font-size="12" font-weight="bold">${esc(r.name)}</text>`);
  out.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="#fafafa" stroke="#ccc"/>`);
  // Shaded periods: read-only (orange), no progress (red).
  for (let i = 1; i < tl.length; i++) {
    const a = tl[i - 1]!;
    const b = tl[i]!;
    const x = f(X(a.t));
    const w = f(Math.max(0.5, X(b.t) - X(a.t)));
    if (a.stalled) out.push(`<rect class="stall" x="${x}" y="${m.t}" width="${w}" height="${ph}" fill="#d62728" fill-opacity="0.15"/>`);
    if (a.ro) out.push(`<rect class="ro" x="${x}" y="${m.t + ph - 6}" width="${w}" height="6" fill="#ff7f0e"/>`);
  }
  const wm = r.watermarks;
  for (const [name, v] of [['high', wm.high], ['low', wm.low], ['min', wm.min]] as const) {
    out.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${f(Y(v))}" y2="${f(Y(v))}" stroke="#888" stroke-dasharray="3 3"><title>${name} ${v}</title></line>`);
  }
  for (const frac of [0, 0.5, 1]) {
    out.push(`<text x="${m.l - 4}" y="${f(Y(total * frac) + 4)}" text-anchor="end" font-size="10">${Math.round(total * frac)}</text>`);
  }
  out.push(`<text x="${m.l}" y="${H - 6}" font-size="10">0</text><text x="${m.l + pw}" y="${H - 6}" text-anchor="end" font-size="10">${(tMax / 1000).toFixed(1)} s</text>`);
  const line = (get: (s: (typeof tl)[number]) => number) => tl.map((s) => `${f(X(s.t))},${f(Y(get(s)))}`).join(' ');
  if (tl.some((s) => s.reserved + s.idle > 0)) {
    out.push(`<polyline class="series reserved" fill="none" stroke="#9467bd" stroke-width="1" points="${line((s) => s.reserved + s.idle)}"><title>pages reserved / set aside</title></polyline>`);
  }
  out.push(`<polyline class="series free" fill="none" stroke="${color}" stroke-width="1.5" points="${line((s) => s.free)}"><title>free pages</title></polyline>`);
  out.push('</svg>');
  return out.join('');
}
