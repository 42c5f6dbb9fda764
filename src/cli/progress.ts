/**
 * Progress while policies run, on stderr: a bar redrawn in place on a
 * terminal, plain periodic lines otherwise (CI logs, pipes).
 */
import type { Sample } from '../lab/collect.js';
import type { PolicyResult } from '../lab/collect.js';
import { num } from '../lab/report/format.js';

const BAR = 24;
const PLAIN_EVERY_MS = 1000;

export class Progress {
  readonly #tty: boolean;
  readonly #out: NodeJS.WriteStream;
  readonly #durationMs: number;
  #index = 0;
  #count = 1;
  #name = '';
  #lastPlain = -Infinity;
  #lastDraw = 0;

  constructor(durationMs: number, out: NodeJS.WriteStream = process.stderr) {
    this.#out = out;
    this.#tty = out.isTTY === true;
    this.#durationMs = durationMs;
  }

  start(index: number, count: number, name: string): void {
    this.#index = index;
    this.#count = count;
    this.#name = name;
    this.#lastPlain = -Infinity;
    if (!this.#tty) this.#out.write(`[${index + 1}/${count}] ${name}: running for ${num(this.#durationMs / 1000, 1)} s\n`);
  }

  sample(s: Sample): void {
    const fs = s.ok.fs ?? 0;
    const detail = `fs ${fs} tx, free ${s.free} pages${s.ro ? ', read-only' : ''}${s.stalled ? ', NO PROGRESS' : ''}`;
    if (this.#tty) {
      const now = performance.now();
      if (now - this.#lastDraw < 100) return;
      this.#lastDraw = now;
      const done = (this.#index + Math.min(1, s.t / this.#durationMs)) / this.#count;
      const fill = Math.round(done * BAR);
      const line = `[${'#'.repeat(fill)}${'-'.repeat(BAR - fill)}] ${this.#index + 1}/${this.#count} ${this.#name.padEnd(17)} ${num(s.t / 1000, 1)}/${num(this.#durationMs / 1000, 1)} s  ${detail}`;
      this.#out.write(`\r\x1b[2K${line.slice(0, (this.#out.columns || 120) - 1)}`);
    } else if (s.t - this.#lastPlain >= PLAIN_EVERY_MS) {
      this.#lastPlain = s.t;
      this.#out.write(`  ${this.#name} ${num(s.t / 1000, 1)}/${num(this.#durationMs / 1000, 1)} s: ${detail}\n`);
    }
  }

  end(r: PolicyResult): void {
    const m = r.metrics;
    const line = `[${this.#index + 1}/${this.#count}] ${r.name}: ${num(m.txPerSec)} tx/s, ${m.txFailed} failed, ${m.oomKills} OOM kills, ${m.livelocks} livelocks${r.partial ? ' (interrupted)' : ''}`;
    this.#out.write(this.#tty ? `\r\x1b[2K${line}\n` : `${line}\n`);
  }

  clear(): void {
    if (this.#tty) this.#out.write('\r\x1b[2K');
  }
}
