/**
 * The report of a lab run (report.json): the options, the machine, every
 * policy's result and the findings computed from them. report.md and
 * report.html are rendered from this object alone, so `nofail report DIR`
 * can re-render a saved run.
 */
import { cpus } from 'node:os';
import type { LabOptions, Shape } from '../config.js';
import type { PolicyResult } from '../collect.js';
import { type Finding, findings } from './findings.js';

export const REPORT_VERSION = 1;

export interface LabReport {
  tool: 'nofail-lab';
  version: number;
  createdAt: string;
  command: 'compare' | 'stress';
  /** True when the run was interrupted (Ctrl-C): some policies did not run or did not finish. */
  partial: boolean;
  options: LabOptions;
  shape: Shape;
  machine: { node: string; cpus: number; platform: string; arch: string };
  policies: PolicyResult[];
  findings: Finding[];
}

export function buildReport(command: LabReport['command'], options: LabOptions, shape: Shape, results: PolicyResult[], partial: boolean): LabReport {
  return {
    tool: 'nofail-lab',
    version: REPORT_VERSION,
    createdAt: new Date().toISOString(),
    command,
    partial,
    options,
    shape,
    machine: { node: process.version, cpus: cpus().length, platform: process.platform, arch: process.arch },
    policies: results,
    findings: findings(results, shape),
  };
}

/** Checks that a parsed report.json is one this version can render. */
export function checkReport(x: unknown): LabReport {
  const r = x as Partial<LabReport> | null;
  if (r === null || typeof r !== 'object' || r.tool !== 'nofail-lab' || !Array.isArray(r.policies)) {
    throw new Error('not a nofail lab report (report.json from `nofail compare` or `nofail stress`)');
  }
  if (r.version !== REPORT_VERSION) throw new Error(`report version ${String(r.version)} is not supported (expected ${REPORT_VERSION})`);
  return r as LabReport;
}
