#!/usr/bin/env node
/**
 * The nofail CLI: the policy lab.
 *   nofail                 = nofail compare, built-in defaults
 *   nofail compare [...]   every policy on the same workload mix, 3 runs each
 *                          (seeds S, S+1, S+2); table + report
 *   nofail stress --policy P [...]   one policy, live view
 *   nofail report DIR      re-render a saved run
 * --policy and --workload also take a module's path (a user's policy or
 * workload, lab/api.ts). Bad options, an unknown command or a module that
 * is not a policy/workload: a message naming it, exit 2. Ctrl-C: the run
 * stops within a second, a partial report is written, exit 130.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { DEFAULTS, LIMITS, type LabOptions } from '../lab/config.js';
import { runCompare } from '../lab/compare.js';
import { catalogOf, isModuleRef, LabModuleError, loadModule } from '../lab/modules.js';
import { POLICY_NAMES } from '../lab/policies/index.js';
import { readReport, renderInto, writeReport } from '../lab/report/files.js';
import { runsNote } from '../lab/report/findings.js';
import { textTable } from '../lab/report/format.js';
import { buildReport, type LabReport, policiesOf } from '../lab/report/model.js';
import { LiveView } from './live.js';
import {
  collectPolicy,
  parseDuration,
  parsePolicies,
  parsePolicy,
  parsePool,
  parseRepeat,
  parseSeed,
  parseTimeScale,
  parseWorkers,
  parseWorkloads,
  WORKERS_LIMIT,
} from './parse.js';
import { Progress } from './progress.js';

const EXIT_USAGE = 2;
const EXIT_SIGINT = 130;
const STARTED = performance.now();
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

class UsageError extends Error {}

interface RunFlags {
  quick?: boolean;
  repeat?: number;
  policies?: string[];
  /** compare: modules (or names) added; stress: the one policy. */
  policy?: string | string[];
  workload?: string[];
  workers?: number;
  pool?: number;
  duration?: number;
  seed?: number;
  timescale?: number;
  out: string;
  json?: boolean;
}

/** Loads the modules among `refs` (checking each), and returns every entry as a name. */
async function namesOf(kind: 'policy' | 'workload', refs: readonly string[], modules: Record<string, string>): Promise<string[]> {
  const names: string[] = [];
  for (const ref of refs) {
    if (!isModuleRef(ref)) {
      names.push(ref);
      continue;
    }
    try {
      const l = kind === 'policy' ? await loadModule('policy', ref) : await loadModule('workload', ref);
      if (modules[l.value.name] !== undefined && modules[l.value.name] !== l.path) {
        throw new UsageError(`error: ${kind} module '${ref}' is invalid. Two modules declare the ${kind} name '${l.value.name}'.`);
      }
      modules[l.value.name] = l.path!;
      names.push(l.value.name);
    } catch (e) {
      if (e instanceof LabModuleError) throw new UsageError(`error: ${kind} module '${ref}' is invalid (${e.hook}). ${e.message}${e.hookStack !== e.message ? `\n${e.hookStack}` : ''}`);
      throw e;
    }
  }
  return [...new Set(names)];
}

/** The options of a run command; `repeat`: its default number of runs per policy (compare 3, stress 1). */
async function labOptions(f: RunFlags, policyRefs: readonly string[], repeat: number): Promise<LabOptions> {
  const quick = f.quick === true;
  const modules = { policies: {} as Record<string, string>, workloads: {} as Record<string, string> };
  const policies = await namesOf('policy', policyRefs, modules.policies);
  const workloads = await namesOf('workload', f.workload ?? DEFAULTS.workloads, modules.workloads);
  const workers = f.workers ?? Math.max(DEFAULTS.workers, workloads.length);
  if (workers < workloads.length) {
    throw new UsageError(
      `error: option '--workers <N>' argument '${workers}' is invalid. Expected ${WORKERS_LIMIT}: the mix ${workloads.join(',')} needs at least ${workloads.length}.`,
    );
  }
  return {
    policies,
    modules,
    workers,
    poolBytes: f.pool ?? DEFAULTS.poolBytes,
    durationMs: f.duration ?? (quick ? DEFAULTS.quickDurationMs : DEFAULTS.durationMs),
    seed: f.seed ?? DEFAULTS.seed,
    repeat: f.repeat ?? (quick ? DEFAULTS.quickRepeat : repeat),
    workloads,
    quick,
    timeScale: f.timescale ?? DEFAULTS.timeScale,
  };
}

/** Ctrl-C aborts the run (it stops and reports); a second Ctrl-C exits at once. */
function interruptible(): AbortController {
  const ac = new AbortController();
  process.once('SIGINT', () => {
    process.stderr.write('\ninterrupted: stopping the run and writing a partial report\n');
    ac.abort();
    process.once('SIGINT', () => process.exit(EXIT_SIGINT));
  });
  return ac;
}

function elapsedS(): number {
  return (performance.now() - STARTED) / 1000;
}

function finish(report: LabReport, out: string, tableOut: NodeJS.WriteStream): number {
  const files = writeReport(out, report);
  const policies = policiesOf(report);
  tableOut.write(`\n${textTable(policies)}\n\n`);
  if (report.options.repeat > 1) tableOut.write('Each cell: the median of the runs; the line below gives their min–max where they differ.\n\n');
  tableOut.write('Findings:\n');
  for (const f of report.findings) tableOut.write(`- ${f.claim}: ${f.verdict}${f.runs ? ` (${runsNote(f)})` : ''}\n`);
  tableOut.write('\nSummary by criterion (named only where the ranges do not overlap):\n');
  for (const c of report.criteria) tableOut.write(`- ${c.criterion}: ${c.text}\n`);
  for (const p of policies.filter((x) => x.failure !== null)) {
    const f = p.failure!;
    tableOut.write(`\n${p.name} FAILED: ${f.module}: hook ${f.hook} threw in ${f.where}: ${f.message}\n${f.stack}\n`);
  }
  tableOut.write(`\nreport: ${files.join(', ')}\ntook ${elapsedS().toFixed(1)} s\n`);
  return report.partial ? EXIT_SIGINT : 0;
}

function describeRuns(o: LabOptions): string {
  const runs = o.repeat === 1 ? `1 run of ${o.durationMs / 1000} s` : `${o.repeat} runs of ${o.durationMs / 1000} s (seeds ${o.seed}–${o.seed + o.repeat - 1})`;
  return `${runs}${o.quick && o.repeat === 1 ? ' (--quick: one run each, so no ranges; the default is 3)' : ''}`;
}

async function compare(f: RunFlags): Promise<number> {
  const extra = Array.isArray(f.policy) ? f.policy : [];
  const options = await labOptions(f, [...(f.policies ?? POLICY_NAMES), ...extra], DEFAULTS.repeat);
  const catalog = await catalogOf(options.modules);
  const ac = interruptible();
  const progress = new Progress(options.durationMs);
  process.stderr.write(
    `nofail compare: ${options.policies.length} policies × ${describeRuns(options)}, ${options.workers} workers (${options.workloads.join(',')}), ` +
      `pool ${options.poolBytes / 1048576} MiB\n`,
  );
  const { results, partial } = await runCompare(options, catalog, {
    signal: ac.signal,
    onRunStart: (run) => progress.start(run),
    onSample: (_name, s) => progress.sample(s),
    onRunEnd: (r) => progress.end(r),
  });
  progress.clear();
  return finish(buildReport('compare', options, results, partial || ac.signal.aborted, elapsedS()), resolve(f.out), process.stdout);
}

async function stress(f: RunFlags): Promise<number> {
  const options = await labOptions(f, [f.policy as string], 1);
  const catalog = await catalogOf(options.modules);
  const ac = interruptible();
  const live = new LiveView(options.policies[0]!, options.durationMs, f.json === true);
  const { results, partial } = await runCompare(options, catalog, {
    signal: ac.signal,
    onRunStart: (run) => live.start(run),
    onSample: (_n, s, st) => live.sample(s, st),
  });
  const report = buildReport('stress', options, results, partial || ac.signal.aborted, elapsedS());
  if (f.json) {
    writeReport(resolve(f.out), report);
    process.stdout.write(`${JSON.stringify({ type: 'result', partial: report.partial, runs: report.runs.map(({ timeline: _t, ...rest }) => rest) })}\n`);
    return report.partial ? EXIT_SIGINT : 0;
  }
  return finish(report, resolve(f.out), process.stdout);
}

function report(dir: string): number {
  let r: LabReport;
  try {
    r = readReport(resolve(dir));
  } catch (e) {
    throw new UsageError(`error: argument 'DIR' is invalid. ${dir}: ${(e as Error).message}`);
  }
  renderInto(resolve(dir), r);
  process.stdout.write(`${textTable(policiesOf(r))}\n\n`);
  for (const x of r.findings) process.stdout.write(`- ${x.claim}: ${x.verdict}${x.runs ? ` (${runsNote(x)})` : ''}\n`);
  process.stdout.write(`\nre-rendered ${resolve(dir)}/report.md and report.html\n`);
  return 0;
}

/** The options both run commands take; `repeat`: the command's default runs per policy. */
function runOptions(cmd: Command, quickNote: string, repeat: number): Command {
  return cmd
    .option('--quick', quickNote)
    .option('--repeat <N>', `runs per policy, with seeds S, S+1, … (${LIMITS.repeat.min} to ${LIMITS.repeat.max}; default ${repeat}${repeat === DEFAULTS.quickRepeat ? '' : `, --quick ${DEFAULTS.quickRepeat}`})`, parseRepeat)
    .option('--workload <list>', `the workload mix: built-in names or module paths (default ${DEFAULTS.workloads.join(',')})`, parseWorkloads)
    .option('--workers <N>', `worker threads: ${WORKERS_LIMIT} (default ${DEFAULTS.workers}: one per workload, the rest fs)`, parseWorkers)
    .option('--pool <SIZE>', `pool size, 4MiB to 1GiB (default ${DEFAULTS.poolBytes / 1048576}MiB)`, parsePool)
    .option('--duration <T>', `time per run, 500ms to 10m (default ${DEFAULTS.durationMs / 1000}s, --quick ${DEFAULTS.quickDurationMs / 1000}s)`, parseDuration)
    .option('--seed <S>', `seed of the first run's operation sequences; run r uses S + r (default ${DEFAULTS.seed})`, parseSeed)
    .option('--timescale <X>', `factor on the kernel's OOM timers, above 0 to 10 (default ${DEFAULTS.timeScale}: reaper 200ms, victim timeout 500ms)`, parseTimeScale)
    .option('--out <DIR>', 'where report.json, report.md and report.html go', 'nofail-report');
}

function program(): Command {
  const p = new Command('nofail')
    .description('The nofail policy lab: real workers under memory pressure, looping and reservation policies compared — yours too.')
    .version(VERSION, '-V, --version', 'print the version')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  const compareCmd = runOptions(
    p.command('compare', { isDefault: true }).description(`run every policy ${DEFAULTS.repeat} times on the same workload mix, print a table with ranges, write a report (the default command)`),
    `a short run: ${DEFAULTS.quickRepeat} run per policy of ${DEFAULTS.quickDurationMs / 1000}s (about 25 s in all; no ranges)`,
    DEFAULTS.repeat,
  )
    .option('--policies <a,b>', `policies to run, names or module paths (default all: ${POLICY_NAMES.join(',')})`, parsePolicies)
    .option('--policy <module>', 'also run your policy module (a path; repeatable)', collectPolicy)
    // The default command takes no arguments: a word here is a command nofail does not have.
    .argument('[command]')
    .action(async (command: string | undefined, f: RunFlags, cmd: Command) => {
      if (command !== undefined) {
        const near = ['compare', 'stress', 'report', 'help'].find((c) => c.startsWith(command.slice(0, 2)));
        cmd.parent!.error(`error: unknown command '${command}'${near ? `\n(Did you mean ${near}?)` : ''}`, { exitCode: EXIT_USAGE, code: 'commander.unknownCommand' });
      }
      process.exitCode = await compare(f);
    });
  runOptions(p.command('stress').description('one policy, with a live view of throughput, free pages, PSI and vmstat'), `a short run (${DEFAULTS.quickDurationMs / 1000}s)`, 1)
    .requiredOption('--policy <P>', `the policy: a name (${POLICY_NAMES.join(', ')}) or a module path`, parsePolicy)
    .option('--json', 'JSON lines: one sample a second, then the result')
    .action(async (f: RunFlags) => {
      process.exitCode = await stress(f);
    });
  p.command('report')
    .description('re-render report.md and report.html of a saved run from its report.json, and print its table')
    .argument('<DIR>', 'a directory written by compare or stress')
    .action((dir: string) => {
      process.exitCode = report(dir);
    });
  // The top-level help shows the default command's options too.
  p.addHelpText('after', () => `\nThe default command, compare:\n${compareCmd.helpInformation().replace(/^Usage: nofail compare/, 'Usage: nofail [compare]')}`);
  for (const c of p.commands) c.exitOverride().showHelpAfterError('(run with --help for usage)');
  return p;
}

// nofail's warnings are data here (the report counts them): do not print each one.
process.removeAllListeners('warning');
try {
  await program().parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : EXIT_USAGE);
  if (e instanceof UsageError) {
    process.stderr.write(`${e.message}\n`);
    process.exit(EXIT_USAGE);
  }
  throw e;
}
process.exit(process.exitCode ?? 0);
