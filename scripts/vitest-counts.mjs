// Reads a vitest JSON report into the counts of the plain closing line.
// A file that failed to load counts as a failure even with no test in it,
// and a missing report counts as one failure.
import { existsSync, readFileSync } from 'node:fs';

export function vitestCounts(jsonPath, label = 'vitest') {
  if (!existsSync(jsonPath)) {
    console.error(`${label} produced no report`);
    return { passed: 0, failed: 1, skipped: 0 };
  }
  const r = JSON.parse(readFileSync(jsonPath, 'utf8'));
  let failed = r.numFailedTests;
  for (const f of r.testResults) if (f.status === 'failed' && f.assertionResults.length === 0) failed++;
  return { passed: r.numPassedTests, failed, skipped: r.numPendingTests + (r.numTodoTests ?? 0) };
}

/**
 * Every test of a vitest JSON report by a stable key (file and full name),
 * with its status: so that two passes over the same tests can be counted
 * as one set of distinct tests. A file that failed to load is one failed
 * "test" keyed by its name.
 */
export function vitestOutcomes(jsonPath, root = process.cwd()) {
  const out = new Map();
  if (!existsSync(jsonPath)) return out;
  const r = JSON.parse(readFileSync(jsonPath, 'utf8'));
  for (const f of r.testResults) {
    const file = f.name.startsWith(root) ? f.name.slice(root.length + 1) : f.name;
    if (f.status === 'failed' && f.assertionResults.length === 0) out.set(`${file} (failed to load)`, 'failed');
    for (const t of f.assertionResults) out.set(`${file} > ${t.fullName}`, t.status);
  }
  return out;
}
