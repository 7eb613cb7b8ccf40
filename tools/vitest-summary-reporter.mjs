// A vitest reporter that ends the run with one plain line CI can read, e.g.
//   Tests: 42 passed, 0 failed, 1 skipped
// Use it after the default reporter: reporters: ['default', './tools/vitest-summary-reporter.mjs'].
//
// "failed" also counts what fails outside a test: a file that does not load, a failing
// beforeAll/afterAll, an unhandled error. Each of those fails the run, so the line must not say
// "0 failed" while vitest exits non-zero.

/** Tallies a finished run; exported for its test. */
export function tally(testModules, unhandledErrors = []) {
  const counts = { passed: 0, failed: 0, skipped: 0, errors: unhandledErrors.length };
  for (const mod of testModules) {
    counts.errors += mod.errors().length;
    for (const suite of mod.children.allSuites()) counts.errors += suite.errors().length;
    for (const test of mod.children.allTests()) {
      const { state } = test.result();
      if (state === 'passed') counts.passed++;
      else if (state === 'failed') counts.failed++;
      else counts.skipped++;
    }
  }
  return counts;
}

/** The summary line for {@link tally}'s counts. */
export function summaryLine({ passed, failed, skipped, errors }) {
  return `Tests: ${passed} passed, ${failed + errors} failed, ${skipped} skipped`;
}

export default class SummaryReporter {
  onTestRunEnd(testModules, unhandledErrors, reason) {
    const counts = tally(testModules, unhandledErrors);
    const notes = [];
    if (counts.errors > 0) notes.push(`${counts.errors} error(s) outside tests counted as failed`);
    if (reason === 'interrupted') notes.push('run interrupted');
    if (testModules.length === 0) notes.push('no test files ran');
    if (notes.length > 0) process.stdout.write(`\n${notes.join('; ')}\n`);
    process.stdout.write(`${notes.length ? '' : '\n'}${summaryLine(counts)}\n`);
  }
}
