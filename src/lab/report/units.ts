/** How the report writes numbers: latencies, durations, counts, shares. */

/** µs as 850µs, 1.2ms, 3.40s. */
export function us(v: number): string {
  if (!(v > 0)) return '0';
  if (v < 1000) return `${Math.round(v)}µs`;
  if (v < 1_000_000) return `${(v / 1000).toFixed(v < 10_000 ? 1 : 0)}ms`;
  return `${(v / 1_000_000).toFixed(2)}s`;
}

export function ms(v: number): string {
  return us(v * 1000);
}

export function num(v: number, digits = 0): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '-';
}

export function pct(v: number, digits = 1): string {
  return `${num(v, digits)}%`;
}

/** µs in milliseconds, two significant digits below 100 ms (0.032, 1.2, 35, 1090). */
export function msOfUs(v: number): string {
  if (!(v > 0)) return '0';
  const m = v / 1000;
  return m >= 100 ? m.toFixed(0) : String(Number(m.toPrecision(2)));
}
