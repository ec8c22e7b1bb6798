import { appendFileSync, mkdirSync } from "node:fs";
import { basename, join } from "node:path";
import { it } from "vitest";
import { RESULTS_DIR } from "../support/secrets-audit.ts";

export interface ScenarioResult {
  /** The test file, so that only a run of the whole suite rewrites the doc. */
  file?: string;
  group: string;
  scenario: string;
  expected: string;
  observed: string;
  pass: boolean;
}

export function recordScenario(result: ScenarioResult): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  appendFileSync(join(RESULTS_DIR, "reliability.jsonl"), `${JSON.stringify(result)}\n`);
}

/**
 * A test that also writes its row of docs/reliability.md: what was expected, what was observed
 * (the function's return value, or the failure), and whether it passed.
 */
export function scenario(group: string, name: string, expected: string, run: () => Promise<string>, timeout?: number): void {
  it(
    name,
    async () => {
      let observed = "";
      let pass = false;
      try {
        observed = await run();
        pass = true;
      } catch (error) {
        observed = `FAILED: ${(error as Error).message.split("\n")[0]}`;
        throw error;
      } finally {
        recordScenario({ file: /\(([^)]+)\)$/.exec(group)?.[1], group, scenario: name, expected, observed, pass });
      }
    },
    timeout,
  );
}

export const fileGroup = (url: string) => basename(url).replace(/\.test\.ts$/, "");

/** A scenario this machine cannot run (it says why in the test name). */
export function skippedScenario(_group: string, name: string): void {
  it.skip(name, () => undefined);
}
