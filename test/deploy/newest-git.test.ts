import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { docker, dockerReady } from "../support/docker-pod.ts";
import { skipBecause } from "../support/require-tool.ts";
import { REPO_ROOT } from "../support/run-git.ts";

// The tag .ci/trixie-git-image.sh builds: the hash of the script.
const IMAGE = `gtk-trixie-git:${createHash("sha256").update(readFileSync(join(REPO_ROOT, ".ci/trixie-git-image.sh"))).digest("hex").slice(0, 12)}`;
// The shim's and helper's tests: the helper protocol, stale credentials, the retry policy,
// refusals and faults, every shell, SSH URLs, Azure DevOps' bearer tokens, partial clones, the
// git precedence rules the shim relies on, CI systems' own set-ups, scope, containment, signals,
// helper-only mode with ephemeral answers, and stateless tokens of a few kilobytes.
const FILES = [
  "test/integration/credential-helper.test.ts",
  "test/integration/stale-credentials.test.ts",
  "test/integration/retry-policy.test.ts",
  "test/integration/refusal-and-faults.test.ts",
  "test/integration/shells.test.ts",
  "test/integration/ssh-to-https.test.ts",
  "test/integration/provider-azure-devops.test.ts",
  "test/integration/partial-clone.test.ts",
  "test/integration/lfs.test.ts",
  "test/integration/git-precedence.test.ts",
  "test/integration/ci-systems.test.ts",
  "test/integration/scope-and-containment.test.ts",
  "test/integration/signals.test.ts",
  "test/integration/helper-only-mode.test.ts",
  "test/integration/stateless-tokens.test.ts",
];

function imageReady(): boolean {
  if (!dockerReady()) return false;
  try {
    execFileSync("docker", ["image", "inspect", IMAGE], { stdio: "ignore" });
    return true;
  } catch {
    return !skipBecause(`the image ${IMAGE} (Debian trixie's git) is missing; .ci/run builds it with .ci/trixie-git-image.sh`);
  }
}

// Users' build machines run many gits: Debian 12's 2.39 runs the whole suite on the host; the
// newest Debian ships (trixie's 2.47) runs the shim's and helper's tests here, in a container
// with this checkout mounted and the checkout's own Node.js.
describe.skipIf(process.getuid?.() !== 0 || !imageReady())("the shim and helper on the newest git Debian ships", () => {
  it("trixie's git passes the shim's and helper's tests", async () => {
    const version = await docker(["run", "--rm", IMAGE, "git", "--version"]);
    expect(version.stdout).toMatch(/git version 2\.(4[7-9]|[5-9]\d)/);
    const r = await docker(
      ["run", "--rm", "--network", "host", "-v", `${REPO_ROOT}:${REPO_ROOT}`, "-w", REPO_ROOT, "-e", "CI=true", IMAGE, "sh", "-c", `PATH=${REPO_ROOT}/node_modules/node/bin:$PATH exec node node_modules/vitest/vitest.mjs run --maxWorkers=1 ${FILES.join(" ")}`],
      { reject: false, timeoutMs: 1_200_000 },
    );
    expect(r.exitCode, `${version.stdout}\n${r.stdout.slice(-6000)}\n${r.stderr.slice(-3000)}`).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`Test Files .*${FILES.length} passed`));
  }, 1_200_000);
});
