import { defineConfig } from "vitest/config";

// Tests that need the machine to themselves, one file at a time, after the rest (`npm test` runs
// both): the load test, whose 3-second tokens expire mid-request when other tests starve it of
// CPU, and git's own test suite through the shim, which keeps both cores busy for a quarter of
// an hour.
// It continues the run before it: test/global-setup.ts keeps that run's results.
process.env.GTK_TEST_CONTINUE = "1";

export default defineConfig({
  test: {
    include: ["test/reliability/concurrency.test.ts", "test/git-suite/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    fileParallelism: false,
    testTimeout: 80 * 60_000,
    hookTimeout: 60_000,
  },
});
