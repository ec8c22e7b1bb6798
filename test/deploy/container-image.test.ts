import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { validate } from "dockerfile-utils";
import { afterAll, describe, expect, it } from "vitest";
import { FakeGitHub } from "../fakes/fake-github.ts";
import { generateAppKey } from "../support/app-key.ts";
import { REPO_ROOT } from "../support/run-git.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";

const DOCKERFILE = readFileSync(join(REPO_ROOT, "Dockerfile"), "utf8");
const UID = 10001;

afterAll(removeTempDirs);

describe("Dockerfile", () => {
  it("lints clean", () => {
    expect(validate(DOCKERFILE)).toEqual([]);
  });

  it("the linter bites", () => {
    expect(validate("FROM node:24\nEXPOSE notaport\nHEALTHCHECK CMD\n").length).toBeGreaterThan(0);
  });

  it("is multi-stage on a Node.js LTS base, runs as a non-root UID, and has a health check through status", () => {
    const froms = DOCKERFILE.match(/^FROM .*/gm) ?? [];
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const from of froms) expect(from).toMatch(/^FROM node:(22|24)-[a-z]+-slim/);
    expect(DOCKERFILE).toMatch(new RegExp(`^USER ${UID}:${UID}$`, "m"));
    expect(DOCKERFILE).toMatch(/HEALTHCHECK[\s\S]*"status"/);
    expect(DOCKERFILE).toMatch(/npm ci --omit=dev/);
  });
});

describe.skipIf(process.getuid?.() !== 0)("the image's layout, reproduced in a folder", () => {
  it("runs the daemon from a production install as a non-root user against the fake GitHub", async () => {
    // The same steps as the Dockerfile: production dependencies, the build output, the shim.
    const root = tempDir();
    chmodSync(root, 0o755);
    const app = join(root, "app");
    mkdirSync(app, { recursive: true });
    for (const f of ["package.json", "package-lock.json"]) cpSync(join(REPO_ROOT, f), join(app, f));
    await execa("npm", ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"], { cwd: app });
    cpSync(join(REPO_ROOT, "dist"), join(app, "dist"), { recursive: true });
    cpSync(join(REPO_ROOT, "shim"), join(app, "shim"), { recursive: true });
    expect(existsSync(join(app, "node_modules", "typescript"))).toBe(false);
    expect(existsSync(join(app, "node_modules", "vitest"))).toBe(false);

    const key = generateAppKey();
    const github = new FakeGitHub({ appId: 7, publicKey: key.publicKey, installations: [{ id: 1, login: "acme" }] });
    await github.start();
    const run = tempDir();
    chmodSync(run, 0o755);
    const etc = join(run, "etc");
    mkdirSync(etc);
    writeFileSync(join(etc, "app.pem"), key.privateKey, { mode: 0o400 });
    chownSync(join(etc, "app.pem"), UID, UID);
    writeFileSync(join(etc, "config.yaml"), JSON.stringify({ providers: [{ name: "acme", type: "github-app", appId: 7, privateKeyFile: join(etc, "app.pem"), apiUrl: github.url, gitUrl: "http://127.0.0.1:1", owners: ["acme"] }] }));
    const volume = join(run, "volume");
    mkdirSync(volume, { mode: 0o777 });
    chmodSync(volume, 0o777);
    const env = { PATH: process.env.PATH, GIT_TOKEN_KEEPER_DIR: join(volume, "state"), GIT_TOKEN_KEEPER_CONFIG: join(etc, "config.yaml"), NODE_ENV: "production" };
    const asUser = { uid: UID, gid: UID, env, extendEnv: false, cwd: app } as const;
    const cli = join(app, "dist", "cli", "main.js");
    const daemon = execa(process.execPath, [cli, "run", "--log-format", "json"], { ...asUser, reject: false });
    try {
      const install = await execa(process.execPath, [cli, "install-shim", join(volume, "shim")], asUser);
      expect(install.stdout).toContain("installed");
      expect(statSync(join(volume, "shim", "git")).mode & 0o111).not.toBe(0);
      const deadline = Date.now() + 20_000;
      let status = await execa(process.execPath, [cli, "status"], { ...asUser, reject: false });
      while (status.exitCode !== 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        status = await execa(process.execPath, [cli, "status"], { ...asUser, reject: false });
      }
      expect(status.exitCode, String(status.stderr) + String(status.stdout)).toBe(0);
      expect(statSync(join(volume, "state")).uid).toBe(UID);
      expect(github.mintsFor("acme")).toBe(1);
    } finally {
      daemon.kill("SIGTERM");
      const done = await daemon;
      expect(done.exitCode, String(done.stderr)).toBe(0);
      await github.stop();
    }
  });
});
