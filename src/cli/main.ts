#!/usr/bin/env node
/**
 * The nofail CLI: the policy lab.
 *   nofail                 = nofail compare, built-in defaults
 *   nofail compare [...]   every policy on the same workload and seed; table + report
 *   nofail stress --policy P [...]   one policy, live view
 *   nofail report DIR      re-render a saved run
 * Bad options: a message naming the option, exit 2. Ctrl-C: the run stops
 * within a second, a partial report is written, exit 130.
 */
import { resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { DEFAULTS, type LabOptions, shapeOf, type Workload, WORKLOADS } from '../lab/config.js';
import { runCompare } from '../lab/compare.js';
import { POLICY_NAMES } from '../lab/policies/index.js';
import { readReport, renderInto, writeReport } from '../lab/report/files.js';
import { textTable } from '../lab/report/format.js';
import { buildReport, type LabReport } from '../lab/report/model.js';
import { LiveView } from './live.js';
import { parseDuration, parsePolicies, parsePolicy, parsePool, parseSeed, parseTimeScale, parseWorkers, parseWorkloads } from './parse.js';
import { Progress } from './progress.js';

const EXIT_USAGE = 2;
const EXIT_SIGINT = 130;

class UsageError extends Error {}

interface RunFlags {
  quick?: boolean;
  policies?: string[];
  policy?: string;
  workload?: Workload[];
  workers?: number;
  pool?: number;
  duration?: number;
  seed?: number;
  timescale?: number;
  out: string;
  json?: boolean;
}

function labOptions(f: RunFlags, policies: string[], workloads: Workload[]): LabOptions {
  const quick = f.quick === true;
  const workers = f.workers ?? Math.max(DEFAULTS.workers, workloads.length);
  if (workers < workloads.length) {
    throw new UsageError(`error: option '--workers <N>' argument '${workers}' is invalid. The mix ${workloads.join(',')} needs at least ${workloads.length} workers.`);
  }
  return {
    policies,
    workers,
    poolBytes: f.pool ?? DEFAULTS.poolBytes,
    durationMs: f.duration ?? (quick ? DEFAULTS.quickDurationMs : DEFAULTS.durationMs),
    seed: f.seed ?? DEFAULTS.seed,
    workloads,
    quick,
    timeScale: f.timescale ?? (quick ? DEFAULTS.quickTimeScale : DEFAULTS.timeScale),
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

function finish(report: LabReport, out: string, tableOut: NodeJS.WriteStream): number {
  const files = writeReport(out, report);
  tableOut.write(`\n${textTable(report.policies)}\n\n`);
  for (const f of report.findings) tableOut.write(`- ${f.claim}: ${f.verdict}\n`);
  tableOut.write(`\nreport: ${files.join(', ')}\n`);
  return report.partial ? EXIT_SIGINT : 0;
}

async function compare(f: RunFlags): Promise<number> {
  const options = labOptions(f, f.policies ?? POLICY_NAMES, DEFAULTS.workloads);
  const ac = interruptible();
  const progress = new Progress(options.durationMs);
  process.stderr.write(
    `nofail compare: ${options.policies.length} policies × ${options.durationMs / 1000} s, ${options.workers} workers, ` +
      `pool ${options.poolBytes / 1048576} MiB, seed ${options.seed}\n`,
  );
  const { results, partial } = await runCompare(options, {
    signal: ac.signal,
    onPolicyStart: (i, n, name) => progress.start(i, n, name),
    onSample: (_name, s) => progress.sample(s),
    onPolicyEnd: (r) => progress.end(r),
  });
  progress.clear();
  return finish(buildReport('compare', options, shapeOf(options), results, partial || ac.signal.aborted), resolve(f.out), process.stdout);
}

async function stress(f: RunFlags): Promise<number> {
  const options = labOptions(f, [f.policy!], f.workload ?? DEFAULTS.workloads);
  const ac = interruptible();
  const live = new LiveView(options.policies[0]!, options.durationMs, f.json === true);
  const { results, partial } = await runCompare(options, { signal: ac.signal, onSample: (_n, s, st) => live.sample(s, st) });
  const report = buildReport('stress', options, shapeOf(options), results, partial || ac.signal.aborted);
  if (f.json) {
    writeReport(resolve(f.out), report);
    process.stdout.write(`${JSON.stringify({ type: 'result', partial: report.partial, policies: report.policies.map(({ timeline: _t, ...rest }) => rest) })}\n`);
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
  process.stdout.write(`${textTable(r.policies)}\n\n`);
  for (const x of r.findings) process.stdout.write(`- ${x.claim}: ${x.verdict}. ${x.text}\n`);
  process.stdout.write(`\nre-rendered ${resolve(dir)}/report.md and report.html\n`);
  return 0;
}

function runOptions(cmd: Command): Command {
  return cmd
    .option('--workers <N>', `worker threads (default ${DEFAULTS.workers}: one per workload, the rest fs)`, parseWorkers)
    .option('--pool <SIZE>', `pool size (default ${DEFAULTS.poolBytes / 1048576}MiB)`, parsePool)
    .option('--duration <T>', `run time per policy, e.g. 6s, 1500ms (default ${DEFAULTS.durationMs / 1000}s, --quick ${DEFAULTS.quickDurationMs / 1000}s)`, parseDuration)
    .option('--seed <S>', `seed of the operation sequences (default ${DEFAULTS.seed})`, parseSeed)
    .option('--timescale <X>', `factor on the kernel's OOM timers (default ${DEFAULTS.timeScale}, --quick ${DEFAULTS.quickTimeScale})`, parseTimeScale)
    .option('--out <DIR>', 'where report.json, report.md and report.html go', 'nofail-report');
}

function program(): Command {
  const p = new Command('nofail')
    .description('The nofail policy lab: real workers under memory pressure, looping and reservation policies compared.')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  runOptions(p.command('compare', { isDefault: true }).description('run every policy on the same workload mix and seed, print a table, write a report'))
    .option('--quick', `a short run (${DEFAULTS.quickDurationMs / 1000}s per policy)`)
    .option('--policies <a,b>', `policies to run (default all: ${POLICY_NAMES.join(',')})`, parsePolicies)
    .action(async (f: RunFlags) => {
      process.exitCode = await compare(f);
    });
  runOptions(p.command('stress').description('one policy, with a live view of throughput, free pages, PSI and vmstat'))
    .requiredOption('--policy <P>', `the policy (${POLICY_NAMES.join(', ')})`, parsePolicy)
    .option('--workload <list>', `the workload mix (default ${WORKLOADS.join(',')})`, parseWorkloads)
    .option('--quick', `a short run (${DEFAULTS.quickDurationMs / 1000}s)`)
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
