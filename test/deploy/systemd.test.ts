import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../support/run-git.ts";
import { haveTool } from "../support/require-tool.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";

const UNITS = [
  { file: "systemd/git-token-keeper.service", user: false, broker: false },
  { file: "systemd/user/git-token-keeper.service", user: true, broker: false },
  { file: "systemd/git-token-broker.service", user: false, broker: true },
];

afterAll(removeTempDirs);

describe.skipIf(!haveTool("systemd-analyze"))("systemd units", () => {
  const dir = tempDir();
  const runtime = join(dir, "runtime");
  mkdirSync(runtime, { mode: 0o700 });
  // verify checks that ExecStart= exists; point it at a stand-in with the installed name.
  const bin = join(dir, "git-token-keeper");
  writeFileSync(bin, "#!/bin/sh\n");
  chmodSync(bin, 0o755);
  const env = { ...process.env, XDG_RUNTIME_DIR: runtime, SYSTEMD_LOG_COLOR: "0" };

  function prepared(unit: (typeof UNITS)[number]): string {
    const copy = join(dir, unit.user ? "user" : "system");
    mkdirSync(copy, { recursive: true });
    const target = join(copy, unit.file.split("/").pop() as string);
    writeFileSync(target, readFileSync(join(REPO_ROOT, unit.file), "utf8").replaceAll("ExecStart=git-token-keeper", `ExecStart=${bin}`));
    return target;
  }

  for (const unit of UNITS) {
    it(`${unit.file} passes systemd-analyze verify`, () => {
      const r = spawnSync("systemd-analyze", [...(unit.user ? ["--user"] : []), "verify", prepared(unit)], { env, encoding: "utf8" });
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
    });

    it(`${unit.file} has an exposure of 2.5 or less`, () => {
      const out = execFileSync("systemd-analyze", [...(unit.user ? ["--user"] : []), "security", "--offline=true", prepared(unit)], { env, encoding: "utf8" });
      const score = Number(/Overall exposure level for .*: (\d+\.\d+)/.exec(out)?.[1]);
      expect(score).toBeLessThanOrEqual(2.5);
    });

    it(`${unit.file} keeps what the design requires`, () => {
      const text = readFileSync(join(REPO_ROOT, unit.file), "utf8");
      for (const line of ["Type=notify", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "CapabilityBoundingSet=\n", "RestrictAddressFamilies=", "SystemCallFilter=@system-service", "Restart=on-failure", ...(unit.broker ? ["DynamicUser=yes", "ExecStart=git-token-keeper broker --config"] : ["RuntimeDirectory=git-token-keeper"])]) {
        expect(text).toContain(line);
      }
      expect(text).not.toMatch(/^MemoryDenyWriteExecute=yes/m);
      if (!unit.broker) expect(text).toMatch(unit.user ? /RuntimeDirectoryMode=0700/ : /RuntimeDirectoryMode=0750/);
      if (!unit.user) expect(text).toMatch(/^LoadCredential=/m);
    });
  }
});
