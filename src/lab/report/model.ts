/**
 * The report of a lab command (report.json): the options, the machine,
 * every run's result (the per-run figures), and what is computed from
 * them — findings over the runs and the summary by criterion. report.md
 * and report.html are rendered from this object alone, so `nofail report
 * DIR` can re-render a saved run.
 */
import { cpus } from 'node:os';
import { type LabOptions, type Shape, seedOf, shapeOf } from '../config.js';
import type { PolicyResult } from '../collect.js';
import { type FindingOverRuns, findingsOverRuns } from './findings.js';
import { type Criterion, criteria, type PolicySummary, summarizePolicies } from './stats.js';

export const REPORT_VERSION = 2;

export interface LabReport {
  tool: 'nofail-lab';
  version: number;
  createdAt: string;
  command: 'compare' | 'stress';
  /** True when the command was interrupted (Ctrl-C): some runs did not happen or did not finish. */
  partial: boolean;
  /** How long the whole command took, start to report (s). */
  elapsedS: number;
  options: LabOptions;
  /** The first round's shape (the others differ only in their seed). */
  shape: Shape;
  machine: { node: string; cpus: number; platform: string; arch: string };
  /** Every run, round by round: the per-run figures. */
  runs: PolicyResult[];
  findings: FindingOverRuns[];
  criteria: Criterion[];
}

export function buildReport(command: LabReport['command'], options: LabOptions, runs: PolicyResult[], partial: boolean, elapsedS: number): LabReport {
  const shapeFor = (seed: number) => shapeOf({ ...options, seed });
  return {
    tool: 'nofail-lab',
    version: REPORT_VERSION,
    createdAt: new Date().toISOString(),
    command,
    partial,
    elapsedS: Math.round(elapsedS * 10) / 10,
    options,
    shape: shapeFor(seedOf(options, 0)),
    machine: { node: process.version, cpus: cpus().length, platform: process.platform, arch: process.arch },
    runs,
    findings: findingsOverRuns(runs, shapeFor),
    criteria: criteria(policiesOf({ options, runs })),
  };
}

/** The report's policies: each one's runs, medians and ranges (stats.ts). */
export function policiesOf(r: Pick<LabReport, 'options' | 'runs'>): PolicySummary[] {
  return summarizePolicies(r.runs, r.options.policies, r.options.modules.policies);
}

/** Checks that a parsed report.json is one this version can render. */
export function checkReport(x: unknown): LabReport {
  const r = x as Partial<LabReport> | null;
  if (r === null || typeof r !== 'object' || r.tool !== 'nofail-lab') {
    throw new Error('not a nofail lab report (report.json from `nofail compare` or `nofail stress`)');
  }
  if (r.version !== REPORT_VERSION || !Array.isArray(r.runs)) throw new Error(`report version ${String(r.version)} is not supported (expected ${REPORT_VERSION})`);
  return r as LabReport;
}
