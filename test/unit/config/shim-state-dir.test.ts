import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { shimStateDir } from "../../../src/config/shim-state-dir.ts";
import { parseConfig } from "../../../src/config/load-config.ts";
import { ConfigError } from "../../../src/errors/keeper-error.ts";
import { SHIM_DIR } from "../../support/run-git.ts";
import { removeTempDirs, tempDir } from "../../support/temp-dir.ts";

afterAll(removeTempDirs);

/** What the shim's own reader (gtk_config_state_dir, under dash) finds in `text`. */
function shellReads(text: string): string | undefined {
  const file = join(tempDir(), "config.yaml");
  writeFileSync(file, text);
  const out = execFileSync("dash", ["-c", '. "$1/token-keeper-lib.sh"; gtk_dir=""; gtk_config_state_dir "$2"; printf %s "$gtk_dir"', "sh", SHIM_DIR, file], { encoding: "utf8" });
  return out === "" ? undefined : out;
}

const INPUTS = [
  "stateDir: /run/x\n",
  'stateDir: "/run/x y"\n',
  "stateDir: '/run/x'  # comment\n",
  "stateDir : /run/x\n",
  "{stateDir: /run/x}\n",
  '{"stateDir": "/run/x", "providers": []}\n',
  "  stateDir: /nested\n",
  "stateDir: relative\nstateDir: /second\n",
  'providers:\n  - command: \'echo "stateDir": /tmp\'\n',
  "stateDir: /run/x\r\n",
  "# stateDir: /commented\n",
];

describe("the shim's reading of stateDir, mirrored", () => {
  for (const text of INPUTS) {
    it(`reads ${JSON.stringify(text)} as the shell does`, () => {
      expect(shimStateDir(text)).toBe(shellReads(text));
    });
  }
});

describe("a config file the shim would read otherwise is refused", () => {
  function problems(text: string): string[] {
    try {
      parseConfig(`${text}providers:\n  - {name: f, type: file, gitUrl: "https://git.example", path: /tmp/gtk-token}\n`, "c.yaml", {});
    } catch (error) {
      if (error instanceof ConfigError) return [...error.problems];
      throw error;
    }
    return [];
  }

  it("`stateDir : /run/x` and `{stateDir: /run/x}` (valid YAML the shim cannot read) name the fix", () => {
    expect(problems("stateDir : /run/x\n").join("\n")).toMatch(/find no stateDir; write it on a line of its own at the top level: stateDir: \/run\/x/);
    const flow = (() => {
      try {
        parseConfig('{stateDir: /run/x, providers: [{name: f, type: file, gitUrl: "https://git.example", path: /tmp/gtk-token}]}\n', "c.yaml", {});
        return [];
      } catch (error) {
        return [...(error as ConfigError).problems];
      }
    })();
    expect(flow.join("\n")).toMatch(/stateDir: the git shim and credential helper/);
  });

  it("text the shim takes for a stateDir where the daemon finds none is refused", () => {
    expect(problems('metrics: {listen: "127.0.0.1:0"}\n# "stateDir": /tmp\n').join("\n")).toMatch(/find stateDir '\/tmp' where the daemon finds none/);
  });

  it("the plain form passes", () => {
    expect(problems("stateDir: /run/x\n").filter((p) => p.includes("stateDir"))).toEqual([]);
  });
});
