/** Writing a report directory (report.json, report.md, report.html) and reading one back. */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderHtml } from './html.js';
import { renderMarkdown } from './markdown.js';
import { checkReport, type LabReport } from './model.js';

export const REPORT_FILES = ['report.json', 'report.md', 'report.html'] as const;

export function writeReport(dir: string, report: LabReport): string[] {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'report.json'), JSON.stringify(report, null, 1));
  renderInto(dir, report);
  return REPORT_FILES.map((f) => join(dir, f));
}

/** report.md and report.html from a report object. */
export function renderInto(dir: string, report: LabReport): void {
  writeFileSync(join(dir, 'report.md'), renderMarkdown(report));
  writeFileSync(join(dir, 'report.html'), renderHtml(report));
}

export function readReport(dir: string): LabReport {
  const text = readFileSync(join(dir, 'report.json'), 'utf8');
  return checkReport(JSON.parse(text));
}
