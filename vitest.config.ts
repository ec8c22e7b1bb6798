import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // git's own test suite runs on its own afterwards (vitest.git-suite.config.ts): it keeps
    // both cores busy for a quarter of an hour, beside which the timing-sensitive reliability
    // tests would starve.
    exclude: ["test/git-suite/**", "**/node_modules/**"],
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // Integration tests start servers and daemons; two cores run two files at a time.
    maxWorkers: 2,
  },
});
