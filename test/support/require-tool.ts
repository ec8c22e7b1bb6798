import { execFileSync } from "node:child_process";

/**
 * Whether a command is on PATH. In CI every tool the tests use must be there (.ci/run installs
 * them), so a missing one fails instead of silently skipping tests.
 */
export function haveTool(name: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" });
    return true;
  } catch {
    if (process.env.CI) throw new Error(`CI must have '${name}' (.ci/run installs it)`);
    return false;
  }
}
