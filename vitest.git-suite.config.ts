import { defineConfig } from "vitest/config";

// git's own test suite through the shim (test/git-suite/), after the rest: `npm test` runs both.
export default defineConfig({
  test: {
    include: ["test/git-suite/**/*.test.ts"],
    testTimeout: 80 * 60_000,
    hookTimeout: 60_000,
  },
});
