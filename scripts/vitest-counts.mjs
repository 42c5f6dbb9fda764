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
