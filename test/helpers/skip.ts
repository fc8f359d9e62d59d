import type { TestContext } from 'node:test';

/** Skips a test and prints why on the run's output, whatever the reporter shows of skips. */
export function skipBecause(t: TestContext, why: string): void {
  process.stdout.write(`# SKIP ${t.name}: ${why}\n`);
  t.diagnostic(why);
  t.skip(why);
}
