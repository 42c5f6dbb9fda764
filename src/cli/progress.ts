/**
 * Progress while the runs go, on stderr: a bar redrawn in place on a
 * terminal, plain periodic lines otherwise (CI logs, pipes).
 */
import type { PolicyResult, Sample } from '../lab/collect.js';
import type { RunInfo } from '../lab/compare.js';
import { num } from '../lab/report/format.js';

const BAR = 24;
const PLAIN_EVERY_MS = 1000;

export class Progress {
  readonly #tty: boolean;
  readonly #out: NodeJS.WriteStream;
  readonly #durationMs: number;
  #run: RunInfo = { index: 0, count: 1, policy: '', round: 0, rounds: 1, seed: 0 };
  #lastPlain = -Infinity;
  #lastDraw = 0;

  constructor(durationMs: number, out: NodeJS.WriteStream = process.stderr) {
    this.#out = out;
    this.#tty = out.isTTY === true;
    this.#durationMs = durationMs;
  }

  #label(): string {
    const r = this.#run;
    return `[${r.index + 1}/${r.count}] ${r.policy}${r.rounds > 1 ? ` (run ${r.round + 1}/${r.rounds}, seed ${r.seed})` : ''}`;
  }

  start(run: RunInfo): void {
    this.#run = run;
    this.#lastPlain = -Infinity;
    if (!this.#tty) this.#out.write(`${this.#label()}: running for ${num(this.#durationMs / 1000, 1)} s\n`);
  }

  sample(s: Sample): void {
    const fs = s.ok.fs ?? 0;
    const detail = `fs ${fs} tx, free ${s.free} pages${s.ro ? ', read-only' : ''}${s.stalled ? ', NO PROGRESS' : ''}`;
    if (this.#tty) {
      const now = performance.now();
      if (now - this.#lastDraw < 100) return;
      this.#lastDraw = now;
      const r = this.#run;
      const done = (r.index + Math.min(1, s.t / this.#durationMs)) / r.count;
      const fill = Math.round(done * BAR);
      const line = `[${'#'.repeat(fill)}${'-'.repeat(BAR - fill)}] ${this.#label()} ${num(s.t / 1000, 1)}/${num(this.#durationMs / 1000, 1)} s  ${detail}`;
      this.#out.write(`\r\x1b[2K${line.slice(0, (this.#out.columns || 120) - 1)}`);
    } else if (s.t - this.#lastPlain >= PLAIN_EVERY_MS) {
      this.#lastPlain = s.t;
      this.#out.write(`  ${this.#run.policy} ${num(s.t / 1000, 1)}/${num(this.#durationMs / 1000, 1)} s: ${detail}\n`);
    }
  }

  end(r: PolicyResult): void {
    const m = r.metrics;
    const what = r.failure
      ? `FAILED: ${r.failure.module}: hook ${r.failure.hook} threw in ${r.failure.where}: ${r.failure.message}`
      : `${num(m.txPerSec)} tx/s, ${m.txFailed} failed, ${m.oomKills} OOM kills (${m.bystanderKills} bystanders), 2015 deadlock: ${r.deadlock.outcome}${r.partial ? ' (interrupted)' : ''}`;
    const line = `${this.#label()}: ${what}`;
    this.#out.write(this.#tty ? `\r\x1b[2K${line}\n` : `${line}\n`);
  }

  clear(): void {
    if (this.#tty) this.#out.write('\r\x1b[2K');
  }
}
