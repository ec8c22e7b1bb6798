import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The load test and git's own test suite run on their own afterwards (vitest.alone.config.ts).
    exclude: ["test/git-suite/**", "test/reliability/concurrency.test.ts", "**/node_modules/**"],
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // Integration tests start servers and daemons; two cores run two files at a time.
    maxWorkers: 2,
  },
});
