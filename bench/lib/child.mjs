// Runs one case in a fresh `node` process (STYLE habit 10) and returns the
// last JSON line it printed, plus how long it took. A case that crashes or
// prints no result comes back as { error } so the run can go on and say so.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

export function runCase(file, args, { quick = false, timeoutMs = 180_000 } = {}) {
  const argv = ['--expose-gc', fileURLToPath(new URL(`../cases/${file}`, import.meta.url)), ...args];
  if (quick) argv.push('--quick');
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, argv, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const seconds = (Date.now() - t0) / 1000;
      const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{'));
      if (code !== 0 || !line) {
        const why = signal ? `killed by ${signal}` : `exit code ${code}`;
        // The first "...Error: message" line says most; else the last lines.
        const lines = (err || out).trim().split('\n');
        const first = lines.find((l) => /^\w*Error\b|^Error:/.test(l.trim()));
        resolve({ error: `${why}: ${first?.trim() ?? lines.slice(-3).join(' | ')}`, seconds });
        return;
      }
      try {
        resolve({ ...JSON.parse(line), seconds });
      } catch (e) {
        resolve({ error: `bad result line: ${e.message}`, seconds });
      }
    });
  });
}
