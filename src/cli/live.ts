/**
 * `nofail stress`'s live view: throughput per workload over the last
 * second, free pages against the watermarks, PSI and vmstat. Redrawn in
 * place on a terminal; one plain line a second otherwise; one JSON object
 * a second with --json.
 */
import type { Sample } from '../lab/collect.js';
import type { RunInfo } from '../lab/compare.js';
import { num } from '../lab/report/format.js';
import { type PoolStats } from '../index.js';

const REDRAW_MS = 250;
const WINDOW_MS = 1000;

export class LiveView {
  readonly #out: NodeJS.WriteStream;
  readonly #tty: boolean;
  readonly #json: boolean;
  readonly #policy: string;
  readonly #durationMs: number;
  #history: Sample[] = [];
  #run = '';
  #lines = 0;
  #last = -Infinity;

  constructor(policy: string, durationMs: number, json: boolean, out: NodeJS.WriteStream = process.stdout) {
    this.#out = out;
    this.#tty = out.isTTY === true && !json;
    this.#json = json;
    this.#policy = policy;
    this.#durationMs = durationMs;
  }

  /** A new run (with --repeat): the rates start over. */
  start(run: RunInfo): void {
    this.#history = [];
    this.#last = -Infinity;
    this.#run = run.rounds > 1 ? ` (run ${run.round + 1}/${run.rounds}, seed ${run.seed})` : '';
  }

  #rates(s: Sample): Record<string, number> {
    const h = this.#history;
    const old = h.find((x) => x.t >= s.t - WINDOW_MS) ?? h[0]!;
    const dt = Math.max(1, s.t - old.t) / 1000;
    const out: Record<string, number> = {};
    for (const [w, n] of Object.entries(s.ok)) out[w] = (n - (old.ok[w] ?? 0)) / dt;
    return out;
  }

  sample(s: Sample, st: PoolStats): void {
    this.#history.push(s);
    while (this.#history.length > 2 && this.#history[0]!.t < s.t - 2 * WINDOW_MS) this.#history.shift();
    const every = this.#tty ? REDRAW_MS : WINDOW_MS;
    if (s.t - this.#last < every) return;
    this.#last = s.t;
    const rates = this.#rates(s);
    const v = st.vmstat;
    if (this.#json) {
      const line = { type: 'sample', policy: this.#policy, run: this.#run.trim() || undefined, t: s.t, ops: rates, free: s.free, watermarks: st.watermarks, readOnly: s.ro === 1, noProgress: s.stalled === 1, psi: st.psi, vmstat: v };
      this.#out.write(`${JSON.stringify(line)}\n`);
      return;
    }
    const tput = Object.entries(rates).map(([w, r]) => `${w} ${num(r)}/s`).join('  ');
    const wm = st.watermarks;
    const vm = `allocstall ${v.allocstall}  pgsteal ${v.pgsteal_direct + v.pgsteal_kswapd}  kswapd_wakeups ${v.kswapd_wakeups}  oom_kill ${v.oom_kill}  alloc_fail ${v.alloc_fail}`;
    const psi = `some ${num(st.psi.some.avg10, 2)}%  full ${num(st.psi.full.avg10, 2)}% (avg10), some total ${num(st.psi.some.total / 1e6, 2)} s`;
    if (!this.#tty) {
      this.#out.write(`${this.#run ? `${this.#run.trim()} ` : ''}${num(s.t / 1000, 1)}s ${tput} | free ${s.free} (min ${wm.min}) | psi ${psi} | ${vm}${s.ro ? ' | read-only' : ''}${s.stalled ? ' | NO PROGRESS' : ''}\n`);
      return;
    }
    const width = 40;
    const fill = Math.round((s.free / st.totalPages) * width);
    const mark = (p: number) => Math.min(width - 1, Math.round((p / st.totalPages) * width));
    const bar = [...'#'.repeat(fill) + '.'.repeat(width - fill)];
    bar[mark(wm.min)] = '|';
    const lines = [
      `nofail stress: ${this.#policy}${this.#run}  ${num(s.t / 1000, 1)}/${num(this.#durationMs / 1000, 1)} s${s.ro ? '  [filesystem read-only]' : ''}${s.stalled ? '  [NO PROGRESS]' : ''}`,
      `throughput  ${tput}`,
      `free pages  [${bar.join('')}] ${s.free}/${st.totalPages}  min ${wm.min} low ${wm.low} high ${wm.high}  reserved ${s.reserved}`,
      `PSI         ${psi}`,
      `vmstat      ${vm}`,
    ];
    if (this.#lines > 0) this.#out.write(`\x1b[${this.#lines}A`);
    for (const l of lines) this.#out.write(`\r\x1b[2K${l.slice(0, (this.#out.columns || 160) - 1)}\n`);
    this.#lines = lines.length;
  }
}
