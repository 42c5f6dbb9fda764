/**
 * Inline SVG charts for report.html: no script, no network, no library.
 *   latencyChart  allocation latency by percentile, one line per policy
 *                 (x: 0, 90, 99, 99.9 … on a log scale of 1/(1 − p); y: log)
 *   memoryChart   free pages over time for one run of a policy: the whole
 *                 pool above, and below it an inset zoomed to the bottom of
 *                 the range, where the min/low/high watermarks (a few
 *                 percent of the pool) and the pages reserved or set aside
 *                 are drawn apart; read-only and no-progress periods shaded.
 * Every axis has ticks and says its unit.
 */
import type { PolicyResult } from '../collect.js';
import { us } from './format.js';

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#393b79', '#637939'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const f = (v: number) => (Math.round(v * 10) / 10).toString();

/** A "nice" tick step (1, 2 or 5 × 10^k) that gives about `count` ticks over `span`. */
export function niceStep(span: number, count: number): number {
  const raw = Math.max(span, 1e-9) / Math.max(1, count);
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

function ticks(max: number, count: number): number[] {
  const step = niceStep(max, count);
  const out: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) out.push(Math.round(v * 1e6) / 1e6);
  return out;
}

export function latencyChart(results: PolicyResult[]): string {
  const W = 760;
  const H = 380;
  const m = { l: 70, r: 180, t: 20, b: 48 };
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
    out.push(`<line class="tick" x1="${m.l - 4}" x2="${m.l + pw}" y1="${f(y)}" y2="${f(y)}" stroke="#e4e4e4"/><text x="${m.l - 6}" y="${f(y + 4)}" text-anchor="end" font-size="11">${us(10 ** e)}</text>`);
  }
  for (const [p, label] of [[0, '0'], [90, '90'], [99, '99'], [99.9, '99.9'], [99.99, '99.99'], [99.999, '99.999']] as const) {
    const x = X(p);
    out.push(`<line class="tick" x1="${f(x)}" x2="${f(x)}" y1="${m.t}" y2="${m.t + ph + 4}" stroke="#e4e4e4"/><text x="${f(x)}" y="${m.t + ph + 17}" text-anchor="middle" font-size="11">${label}</text>`);
  }
  out.push(`<text x="${m.l + pw / 2}" y="${H - 8}" text-anchor="middle" font-size="12">percentile (%), log scale of 1/(1 − p)</text>`);
  out.push(`<text transform="translate(14 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle" font-size="12">allocation latency (log scale)</text>`);
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

/** Vertical room a watermark's label takes (px). */
const LABEL_GAP = 10;

/** The inset's top: enough to show the high watermark and what was reserved, and little else. */
export function zoomTop(r: PolicyResult): number {
  const aside = Math.max(0, ...r.timeline.map((s) => s.reserved + s.idle));
  const want = Math.max(1.5 * r.watermarks.high, 1.25 * aside, 16);
  const step = niceStep(want, 4);
  return Math.ceil(want / step) * step;
}

interface Panel {
  /** Top edge (px) and height of the plot area. */
  top: number;
  height: number;
  /** Pages at the top of the axis (the bottom is 0). */
  max: number;
  name: 'whole' | 'zoom';
}

export function memoryChart(r: PolicyResult, color: string): string {
  const W = 380;
  // The right margin holds the watermarks' labels.
  const m = { l: 52, r: 50 };
  const pw = W - m.l - m.r;
  const tl = r.timeline;
  const tMax = Math.max(1, ...tl.map((s) => s.t));
  const total = r.totalPages;
  const whole: Panel = { top: 22, height: 120, max: total, name: 'whole' };
  const zoom: Panel = { top: whole.top + whole.height + 34, height: 110, max: zoomTop(r), name: 'zoom' };
  const H = zoom.top + zoom.height + 38;
  const X = (t: number) => m.l + (t / tMax) * pw;
  const out: string[] = [];
  out.push(`<svg class="chart memory" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="free pages over time: ${esc(r.name)}">`);
  out.push(`<text x="${m.l}" y="14" font-size="12" font-weight="bold">${esc(r.name)}</text><text x="${W - m.r}" y="14" font-size="10" text-anchor="end" fill="#666">seed ${r.seed}</text>`);
  for (const p of [whole, zoom]) {
    const Y = (v: number) => p.top + p.height - (Math.min(Math.max(v, 0), p.max) / p.max) * p.height;
    out.push(`<g class="panel ${p.name}">`);
    out.push(`<rect x="${m.l}" y="${p.top}" width="${pw}" height="${p.height}" fill="#fafafa" stroke="#ccc"/>`);
    // Shaded periods: no progress (red), read-only (orange band at the bottom).
    for (let i = 1; i < tl.length; i++) {
      const a = tl[i - 1]!;
      const b = tl[i]!;
      const x = f(X(a.t));
      const w = f(Math.max(0.5, X(b.t) - X(a.t)));
      if (a.stalled) out.push(`<rect class="stall" x="${x}" y="${p.top}" width="${w}" height="${p.height}" fill="#d62728" fill-opacity="0.15"/>`);
      if (a.ro) out.push(`<rect class="ro" x="${x}" y="${p.top + p.height - 5}" width="${w}" height="5" fill="#ff7f0e"/>`);
    }
    for (const v of ticks(p.max, p.name === 'whole' ? 4 : 3)) {
      const y = Y(v);
      out.push(`<line class="tick" x1="${m.l - 4}" x2="${m.l + pw}" y1="${f(y)}" y2="${f(y)}" stroke="#e8e8e8"/><text x="${m.l - 6}" y="${f(y + 3.5)}" text-anchor="end" font-size="10">${v}</text>`);
    }
    const wm = r.watermarks;
    if (p.name === 'zoom') {
      // Labels in the right margin, top down, at least LABEL_GAP apart.
      let labelY = -Infinity;
      for (const [name, v, dash] of [['high', wm.high, '6 3'], ['low', wm.low, '3 3'], ['min', wm.min, '1 2']] as const) {
        out.push(`<line class="wm wm-${name}" x1="${m.l}" x2="${m.l + pw}" y1="${f(Y(v))}" y2="${f(Y(v))}" stroke="#555" stroke-dasharray="${dash}"><title>${name} watermark: ${v} pages</title></line>`);
        labelY = Math.max(Y(v) + 3, labelY + LABEL_GAP);
        out.push(`<text x="${m.l + pw + 4}" y="${f(labelY)}" font-size="9" fill="#555">${name} ${v}</text>`);
      }
    } else {
      out.push(`<line class="wm" x1="${m.l}" x2="${m.l + pw}" y1="${f(Y(wm.high))}" y2="${f(Y(wm.high))}" stroke="#555" stroke-dasharray="6 3"><title>high watermark: ${wm.high} pages (see the inset)</title></line>`);
    }
    const line = (get: (s: (typeof tl)[number]) => number) => tl.map((s) => `${f(X(s.t))},${f(Y(get(s)))}`).join(' ');
    if (tl.some((s) => s.reserved + s.idle > 0)) {
      out.push(`<polyline class="series reserved" fill="none" stroke="#9467bd" stroke-width="1.5" points="${line((s) => s.reserved + s.idle)}"><title>pages reserved or set aside</title></polyline>`);
    }
    out.push(`<polyline class="series free" fill="none" stroke="${color}" stroke-width="1.5" points="${line((s) => s.free)}"><title>free pages</title></polyline>`);
    // The x axis: the baseline (0 pages) and its ticks in seconds.
    const base = p.top + p.height;
    out.push(`<line class="baseline" x1="${m.l}" x2="${m.l + pw}" y1="${base}" y2="${base}" stroke="#888"/>`);
    for (const t of ticks(tMax / 1000, 4)) {
      const x = X(t * 1000);
      if (x > m.l + pw + 0.5) continue;
      out.push(`<line x1="${f(x)}" x2="${f(x)}" y1="${base}" y2="${base + 4}" stroke="#888"/><text x="${f(x)}" y="${base + 14}" text-anchor="middle" font-size="10">${t}</text>`);
    }
    out.push(`<text transform="translate(12 ${p.top + p.height / 2}) rotate(-90)" text-anchor="middle" font-size="10">${p.name === 'whole' ? 'free pages' : `pages, 0–${p.max}`}</text>`);
    out.push('</g>');
  }
  out.push(`<text x="${m.l + pw / 2}" y="${whole.top + whole.height + 26}" text-anchor="middle" font-size="10" fill="#666">inset: the bottom ${zoom.max} of ${total} pages</text>`);
  out.push(`<text x="${m.l + pw / 2}" y="${H - 6}" text-anchor="middle" font-size="11">time since the run's start (s)</text>`);
  out.push('</svg>');
  return out.join('');
}
