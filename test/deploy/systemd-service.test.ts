import { chmodSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { docker, dockerReady } from "../support/docker-pod.ts";
import { REPO_ROOT } from "../support/run-git.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { World } from "../support/world.ts";
import { FakeGitLab } from "../fakes/fake-gitlab.ts";
import { FakeOidcIssuer } from "../fakes/fake-oidc-issuer.ts";
import { makeTestCa } from "../support/test-ca.ts";
import { request as httpsRequest } from "node:https";
import { createServer, type AddressInfo } from "node:net";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const IMAGE = "gtk-systemd-host:test";
// Short tokens: a scheduled re-mint happens within the test.
const LIFETIME_MS = 20_000;
const root = process.getuid?.() === 0;
const ready = root && dockerReady();

/** A TCP port nothing listens on now (the container shares the host's network). */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const p = (server.address() as AddressInfo).port;
      server.close(() => resolve(p));
    });
  });
}

/** The fenced block after `<!-- test: NAME -->` in docs/install-systemd.md: what users run. */
function docBlock(name: string): string {
  const doc = readFileSync(join(REPO_ROOT, "docs/install-systemd.md"), "utf8");
  const m = new RegExp(`<!-- test: ${name} -->\\n\`\`\`[a-z]*\\n([\\s\\S]*?)\`\`\``).exec(doc);
  if (!m?.[1]) throw new Error(`docs/install-systemd.md has no block marked ${name}`);
  return m[1].trimEnd();
}

// systemd as PID 1 in a container, with what it needs here (this host refuses --privileged).
const SYSTEMD_FLAGS = ["--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined", "--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock"];

describe.skipIf(!ready)("the systemd units under a real systemd, installed as docs/install-systemd.md says", () => {
  let world: World;
  const name = `gtk-test-${process.pid}-systemd`;
  let pkg: string;

  const sh = (script: string, options: { user?: string; reject?: boolean } = {}) =>
    docker(["exec", ...(options.user ? ["-u", options.user] : []), name, "bash", "-c", script], { reject: options.reject });
  const journal = async () => (await sh("journalctl -t git-token-keeper --no-pager -o cat", { reject: false })).stdout;
  // The CI user, as its runner service runs jobs: a login shell with the shim first on PATH.
  const ci = (script: string) => sh(`runuser -u github-runner -- env PATH="$(git-token-keeper shim-path):$PATH" GIT_TOKEN_KEEPER_DIR=/run/git-token-keeper bash -c '${script}'`, { reject: false });

  /** The doc's config, pointed at the fakes; `layout: "user"` drops the shared group. */
  function configFromDoc(overrides: Record<string, unknown> = {}, layout: "system" | "user" = "system"): string {
    const config = parse(docBlock("system-config")) as { stateGroup?: string; providers: Record<string, unknown>[] };
    config.providers = config.providers.map((p) => ({ ...p, appId: world.github.appId, apiUrl: world.github.url, gitUrl: world.gitUrl, ...overrides }));
    if (layout === "user") delete config.stateGroup;
    return JSON.stringify(config, null, 2);
  }

  beforeAll(async () => {
    await execa("docker", ["build", "--network", "host", "-q", "-t", IMAGE, join(REPO_ROOT, "test/deploy/systemd-host")], { timeout: 600_000 });
    world = await World.create({ tokenLifetimeMs: LIFETIME_MS });
    // The package as npm publishes it: the build output, the shim and the units.
    const dir = tempDir("gtk-pack-");
    chmodSync(dir, 0o755);
    await execa("npm", ["pack", "--silent", "--pack-destination", dir], { cwd: REPO_ROOT });
    pkg = readdirSync(dir).find((f) => f.endsWith(".tgz")) as string;
    writeFileSync(join(dir, "app.pem"), readFileSync(world.keyFile), { mode: 0o600 });
    await docker(["run", "-d", "--name", name, "--network", "host", ...SYSTEMD_FLAGS, "-v", `${dir}:/media/install:ro`, IMAGE]);
    await sh("systemctl is-system-running --wait || true");
    await sh("useradd --create-home github-runner");
  }, 900_000);

  afterAll(async () => {
    await docker(["rm", "-f", name], { reject: false });
    await world?.close();
    removeTempDirs();
  });

  it("the doc's install and enable blocks start the system unit; Type=notify returns once the token exists", async () => {
    const install = docBlock("system-install").replace("npm install -g git-token-keeper", `npm install -g --no-audit --no-fund /media/install/${pkg}`);
    await sh(`set -e; cd /media/install; ${install}`);
    await sh(`cat > /etc/git-token-keeper/config.yaml <<'EOF'\n${configFromDoc()}\nEOF`);
    // The start returns only after READY=1, which the daemon sends after its first mints.
    const enable = await sh(`set -e; ${docBlock("system-enable")}\nstat -c '%U %G %a' /run/git-token-keeper/tokens/acme/acme`, { reject: false });
    expect(enable.exitCode, enable.stderr + (await journal())).toBe(0);
    expect(enable.stdout.trim()).toBe("git-token-keeper git-token-keeper 640");
    expect(world.github.mintsFor("acme")).toBe(1);
    // The key came through LoadCredential: the service user cannot read the file itself.
    expect((await sh("runuser -u git-token-keeper -- cat /etc/git-token-keeper/app.pem", { reject: false })).exitCode).not.toBe(0);
  });

  it("the config watcher leaves the root-only key beside the config alone: no restart, no error", async () => {
    await sleep(3_000);
    expect((await sh("systemctl show -p NRestarts -p ActiveState git-token-keeper")).stdout).toContain("NRestarts=0\nActiveState=active");
    expect(await journal()).not.toMatch(/EACCES|uncaught|cannot watch/i);
  });

  it("a CI user in the group clones through the shim; with plain git it cannot", async () => {
    const url = world.repoUrl("acme/app");
    const plain = await sh(`runuser -u github-runner -- env GIT_TERMINAL_PROMPT=0 git clone -q ${url} /tmp/plain`, { reject: false });
    expect(plain.exitCode).toBe(128);
    const clone = await ci(`git clone -q ${url} ~/app`);
    expect(clone.exitCode, clone.stderr).toBe(0);
  });

  it("refreshes before expiry under the full sandbox, and re-mints when the host refuses the token", async () => {
    const before = world.github.mintsFor("acme");
    await sleep(LIFETIME_MS / 2 + 2_000);
    expect(world.github.mintsFor("acme")).toBeGreaterThan(before);
    world.github.revokeAll();
    const fetch = await ci("cd ~/app && git fetch origin");
    expect(fetch.stderr).toContain("refused the token; retrying with a new one");
    expect(fetch.exitCode, fetch.stderr).toBe(0);
  });

  it("systemctl restart resumes the tokens without minting", async () => {
    const before = world.github.mintsFor("acme");
    await sh("systemctl restart git-token-keeper");
    expect(world.github.mintsFor("acme")).toBe(before);
    expect(await journal()).toContain("resumed token from state dir");
    expect((await ci("cd ~/app && git fetch -q origin")).exitCode).toBe(0);
  });

  it("systemctl reload applies a changed config", async () => {
    await sh(`cat > /etc/git-token-keeper/config.yaml <<'EOF'\n${configFromDoc({ owners: ["acme", "globex"] })}\nEOF`);
    const reload = await sh("systemctl reload git-token-keeper", { reject: false });
    expect(reload.exitCode, reload.stderr).toBe(0);
    // The file watcher may have reloaded too; this one came from systemctl (SIGHUP).
    expect(await journal()).toContain('"why":"SIGHUP"');
    const clone = await ci(`git clone -q ${world.repoUrl("globex/tools")} ~/tools`);
    expect(clone.exitCode, clone.stderr + (await journal())).toBe(0);
  });

  it("a start that fails reports failure", async () => {
    await sh("cp /etc/git-token-keeper/config.yaml /tmp/good.yaml && echo 'providers: nope' > /etc/git-token-keeper/config.yaml");
    const start = await sh("systemctl restart git-token-keeper", { reject: false });
    expect(start.exitCode).not.toBe(0);
    expect(await journal()).toContain("providers");
    await sh("cp /tmp/good.yaml /etc/git-token-keeper/config.yaml && systemctl reset-failed git-token-keeper && systemctl restart git-token-keeper");
  });

  it("a GitLab refresh-token chain at the README's path, under ProtectSystem=strict: refreshed, saved, and still alive after a restart", async () => {
    const gitlab = new FakeGitLab(world.ledger, LIFETIME_MS);
    await gitlab.start();
    try {
      // The README's example path; the unit's StateDirectory= makes it writable for the service.
      await sh(`install -d -o git-token-keeper -g git-token-keeper -m 0700 /var/lib/git-token-keeper && printf '%s\\n' '${gitlab.firstRefreshToken()}' > /var/lib/git-token-keeper/gitlab.refresh && chown git-token-keeper: /var/lib/git-token-keeper/gitlab.refresh && chmod 600 /var/lib/git-token-keeper/gitlab.refresh`);
      const config = JSON.parse(configFromDoc({ owners: ["acme", "globex"] })) as { providers: Record<string, unknown>[] };
      config.providers.push({ name: "gl", type: "gitlab", grant: "refresh-token", baseUrl: gitlab.url, gitUrl: world.gitUrl.replace("127.0.0.1", "localhost"), clientId: gitlab.clientId, refreshTokenFile: "/var/lib/git-token-keeper/gitlab.refresh" });
      await sh(`cat > /etc/git-token-keeper/config.yaml <<'EOF'\n${JSON.stringify(config, null, 2)}\nEOF`);
      expect((await sh("systemctl restart git-token-keeper", { reject: false })).exitCode).toBe(0);
      const waitForRefreshes = async (n: number) => {
        for (let i = 0; i < 100 && gitlab.refreshLog.length < n; i++) await sleep(200);
        return gitlab.refreshLog.length;
      };
      expect(await waitForRefreshes(1), await journal()).toBeGreaterThanOrEqual(1);
      await sleep(500);
      expect(gitlab.refreshLog.every((r) => r.accepted)).toBe(true);
      // The saved token is the live one (read again while a refresh GitLab just answered is
      // being saved: under load the file may trail the chain by that moment).
      let stored = "";
      for (let i = 0; i < 25; i++) {
        stored = (await sh("cat /var/lib/git-token-keeper/gitlab.refresh")).stdout.trim();
        if (gitlab.liveRefreshTokens.has(stored)) break;
        await sleep(200);
      }
      expect(gitlab.liveRefreshTokens.has(stored)).toBe(true);
      expect(await journal()).not.toMatch(/EROFS|cannot write beside/);
      // The chain goes on after a restart, from the saved token.
      await sh("systemctl restart git-token-keeper");
      const before = gitlab.refreshLog.length;
      await sh("rm -f /run/git-token-keeper/tokens/gl/shared; git-token-keeper refresh --provider gl", { reject: false });
      expect(await waitForRefreshes(before + 1)).toBeGreaterThan(before);
      expect(gitlab.refreshLog.every((r) => r.accepted)).toBe(true);
    } finally {
      await gitlab.stop();
    }
  });

  describe("the broker's unit", () => {
    let issuer: FakeOidcIssuer;
    let ca: ReturnType<typeof makeTestCa>;
    let port = 0;
    let config: Record<string, unknown>;
    const brokerJournal = async () => (await sh("journalctl -t git-token-broker --no-pager -o cat", { reject: false })).stdout;
    const writeConfig = () => sh(`cat > /etc/git-token-broker/broker.yaml <<'EOF'\n${JSON.stringify(config, null, 2)}\nEOF`);
    const mainPid = async () => (await sh("systemctl show -p MainPID --value git-token-broker")).stdout.trim();

    /** A token request as an agent whose identity token says `sub`: its status and body. */
    async function ask(sub: string): Promise<{ status: number; body: string }> {
      const identity = await issuer.token({ sub });
      return new Promise((resolve, reject) => {
        const req = httpsRequest({ host: "localhost", port, path: "/v1/token", method: "POST", ca: readFileSync(ca.caFile), headers: { authorization: `Bearer ${identity}`, "content-type": "application/json" } }, (res) => {
          let body = "";
          res.on("data", (c: Buffer) => (body += c.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("error", reject);
        req.end(JSON.stringify({ gitUrl: world.gitUrl, owner: "acme" }));
      });
    }

    beforeAll(async () => {
      issuer = new FakeOidcIssuer();
      await issuer.start();
      ca = makeTestCa();
      port = await freePort();
      config = {
        listen: `127.0.0.1:${port}`,
        // Its own free port: the default 127.0.0.1:9464 may be taken on this shared network.
        metricsListen: `127.0.0.1:${await freePort()}`,
        tls: { certFile: "/etc/git-token-broker/tls.crt", keyFile: "${CREDENTIALS_DIRECTORY}/tls.key" },
        // No privateKeyFile: a github-app provider named acme reads ${CREDENTIALS_DIRECTORY}/acme.pem.
        providers: [{ name: "acme", type: "github-app", appId: world.github.appId, apiUrl: world.github.url, gitUrl: world.gitUrl, owners: ["acme"] }],
        identities: [{ name: "vm", issuer: issuer.issuer, jwksUrl: `${issuer.url}/openid/v1/jwks`, audience: "git-token-keeper" }],
        policies: [{ identity: "vm", claims: { sub: "agent-*" }, gitUrl: world.gitUrl, owners: ["acme"] }],
        // This fake GitHub's tokens live 20 s.
        minRemaining: "0s",
      };
      await sh(
        [
          "set -e",
          "install -d -m 0755 /etc/git-token-broker",
          `cat > /etc/git-token-broker/tls.crt <<'EOF'\n${ca.cert}EOF`,
          `(umask 077; cat > /etc/git-token-broker/tls.key <<'EOF'\n${ca.key}EOF\n)`,
          "install -m 0600 /media/install/app.pem /etc/git-token-broker/app.pem",
          'cp "$(npm root -g)/git-token-keeper/systemd/git-token-broker.service" /etc/systemd/system/',
          "systemctl daemon-reload",
        ].join("\n"),
      );
      await writeConfig();
    });

    afterAll(async () => {
      await sh("systemctl stop git-token-broker", { reject: false });
      await issuer?.stop();
    });

    it("under systemd: a dynamic user, the App key and the TLS key through LoadCredential, READY once it listens, tokens for a proven identity", async () => {
      const start = await sh("systemctl start git-token-broker", { reject: false });
      expect(start.exitCode, start.stderr + (await brokerJournal())).toBe(0);
      expect((await sh("systemctl show -p ActiveState -p DynamicUser git-token-broker")).stdout).toContain("ActiveState=active");
      const answer = await ask("agent-1");
      expect(answer.status, answer.body + (await brokerJournal())).toBe(200);
      expect(world.github.accepts(JSON.parse(answer.body).token, "acme")).toBe(true);
      expect(await brokerJournal()).toContain('"decision":"allowed"');
    });

    it("its limits are in force: memory and open files on its process, and nothing sent to the metadata service or multicast while loopback is reached", async () => {
      const show = (await sh("systemctl show -p MemoryMax -p LimitNOFILE -p IPAddressDeny git-token-broker")).stdout;
      expect(show).toMatch(/^MemoryMax=536870912$/m);
      expect(show).toMatch(/^LimitNOFILE=4096$/m);
      expect(/^IPAddressDeny=(.*)$/m.exec(show)?.[1]?.split(" ")).toEqual(expect.arrayContaining(["169.254.0.0/16", "224.0.0.0/4", "ff00::/8"]));
      // The kernel's view: the process's limit, and its cgroup's memory limit (cgroup v1 or v2).
      const cgroup = 'cg=$(systemctl show -p ControlGroup --value git-token-broker); u=/sys/fs/cgroup/unified; [ -d "$u" ] || u=/sys/fs/cgroup';
      const kernel = await sh(`${cgroup}; grep 'Max open files' /proc/${await mainPid()}/limits; cat /sys/fs/cgroup/memory$cg/memory.limit_in_bytes 2>/dev/null || cat "$u$cg/memory.max"`);
      expect(kernel.stdout).toMatch(/Max open files\s+4096\s+4096/);
      expect(kernel.stdout).toContain("536870912");
      // A shell that joins the service's cgroup, where systemd attached the IP filter, sends as the broker would.
      const inService = (script: string) => sh(`${cgroup}; echo $$ > "$u$cg/cgroup.procs"; ${script}`, { reject: false });
      for (const address of ["169.254.169.254", "224.0.0.251"]) {
        const sent = await inService(`echo probe > /dev/udp/${address}/9`);
        expect(sent.exitCode, address).not.toBe(0);
        expect(sent.stderr).toContain("Operation not permitted");
      }
      const loopback = await inService(`exec 3<>/dev/tcp/127.0.0.1/${port}`);
      expect(loopback.exitCode, loopback.stderr).toBe(0);
    });

    it("systemctl reload takes a changed policy without a restart: the same process, the new policy decides", async () => {
      const pid = await mainPid();
      expect((await ask("runner-1")).status).toBe(403);
      config.policies = [{ identity: "vm", claims: { sub: "runner-*" }, gitUrl: world.gitUrl, owners: ["acme"] }];
      await writeConfig();
      const reload = await sh("systemctl reload git-token-broker", { reject: false });
      expect(reload.exitCode, reload.stderr).toBe(0);
      // The reload job ends when `kill -HUP` does; the broker reads its config just after.
      let answer = await ask("runner-1");
      for (let i = 0; i < 50 && answer.status !== 200; i++) {
        await sleep(200);
        answer = await ask("runner-1");
      }
      expect(answer.status, answer.body + (await brokerJournal())).toBe(200);
      expect((await ask("agent-1")).status).toBe(403);
      expect(await mainPid()).toBe(pid);
      expect((await sh("systemctl show -p NRestarts -p ActiveState git-token-broker")).stdout).toContain("NRestarts=0\nActiveState=active");
      expect(await brokerJournal()).toContain('"message":"config reloaded"');
    });
  });

  it("the user unit through `install --runner github`, with a lingering user manager", async () => {
    await sh("useradd --create-home runner && echo 'runner ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/runner && mkdir -p ~runner/actions-runner && touch ~runner/actions-runner/config.sh && echo /usr/bin:/bin > ~runner/actions-runner/.path && chown -R runner: ~runner/actions-runner");
    const asRunner = (script: string) => sh(`runuser -l runner -c 'export XDG_RUNTIME_DIR=/run/user/$(id -u); ${script}'`, { reject: false });
    const install = await asRunner(`set -e; ${docBlock("user-install")}\nuntil [ -S "$XDG_RUNTIME_DIR/systemd/private" ]; do sleep 0.2; done`);
    expect(install.exitCode, install.stderr).toBe(0);
    await sh(`install -d -o runner -m 0700 ~runner/.config/git-token-keeper && install -o runner -m 0600 /media/install/app.pem ~runner/.config/git-token-keeper/app.pem`);
    await sh(`cat > ~runner/.config/git-token-keeper/config.yaml <<'EOF'\n${configFromDoc({ privateKeyFile: "/home/runner/.config/git-token-keeper/app.pem" }, "user")}\nEOF\nchown runner ~runner/.config/git-token-keeper/config.yaml`);
    const enable = await asRunner(`set -e; ${docBlock("user-enable")}\nsystemctl --user is-active git-token-keeper`);
    expect(enable.exitCode, enable.stderr + (await asRunner("journalctl --user -n 50 --no-pager")).stdout).toBe(0);
    // The runner's job environment: PATH from .path, GIT_TOKEN_KEEPER_DIR from .env.
    const job = await asRunner(`cd ~/actions-runner && export PATH="$(cat .path)" $(cat .env) && git clone -q ${world.repoUrl("acme/app")} ~/job && cd ~/job && git log -1 --format=%H`);
    expect(job.exitCode, job.stderr).toBe(0);
    expect((await sh("journalctl -t git-token-keeper --no-pager -o cat _UID=$(id -u runner)", { reject: false })).stdout).toContain("ready");
  });
});
