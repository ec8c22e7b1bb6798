import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FakeGitHub, type FakeInstallation } from "../fakes/fake-github.ts";
import { GitHttpServer } from "../fakes/git-http-server.ts";
import { TokenLedger } from "../fakes/token-ledger.ts";
import { generateAppKey } from "./app-key.ts";
import { KeeperProcess } from "./keeper-process.ts";
import { runGit, SHIM_DIR, type GitOptions, type GitResult } from "./run-git.ts";
import { tempDir } from "./temp-dir.ts";

/**
 * Everything an integration test needs: a fake GitHub API, a real git smart-HTTP server that
 * accepts only live tokens from it, bare repositories acme/app (with submodule acme/lib),
 * acme/lib and globex/tools, and helpers to run the daemon and git with or without the shim.
 */
export class World {
  readonly dir = tempDir("gtk-world-");
  readonly home = join(this.dir, "home");
  readonly stateDir = join(this.dir, "state");
  readonly keyFile = join(this.dir, "app.pem");
  readonly github: FakeGitHub;
  /** Tokens issued by the other fake sources (Entra ID, GitLab, token services). */
  readonly ledger = new TokenLedger();
  readonly server: GitHttpServer;
  keeper: KeeperProcess | undefined;
  shimDir: string = SHIM_DIR;

  private constructor(installations: FakeInstallation[], tokenLifetimeMs: number) {
    const key = generateAppKey();
    writeFileSync(this.keyFile, key.privateKey, { mode: 0o600 });
    mkdirSync(this.home, { recursive: true });
    this.github = new FakeGitHub({ appId: 4242, publicKey: key.publicKey, installations, tokenLifetimeMs });
    this.server = new GitHttpServer(join(this.dir, "repos"), (password, owner, repo) => this.github.accepts(password, owner, repo) || this.ledger.accepts(password, owner));
  }

  static async create(options: { tokenLifetimeMs?: number; installations?: FakeInstallation[]; audit?: boolean } = {}): Promise<World> {
    const world = new World(
      options.installations ?? [
        { id: 11, login: "acme" },
        { id: 22, login: "globex" },
      ],
      options.tokenLifetimeMs ?? 3_600_000,
    );
    world.github.audit = options.audit ?? true;
    world.ledger.audit = options.audit ?? true;
    await world.github.start();
    await world.server.start();
    await world.#seedRepos();
    return world;
  }

  get gitUrl(): string {
    return this.server.url;
  }

  repoUrl(path: string): string {
    return `${this.server.url}/${path}.git`;
  }

  providerConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      name: "test-app",
      type: "github-app",
      appId: this.github.appId,
      privateKeyFile: this.keyFile,
      apiUrl: this.github.url,
      gitUrl: this.gitUrl,
      owners: ["acme", "globex"],
      ...overrides,
    };
  }

  async startKeeper(config: Record<string, unknown> = {}, options: { waitReady?: boolean; env?: Record<string, string>; pidNamespace?: boolean } = {}): Promise<KeeperProcess> {
    // Fields set to undefined (to drop a default) are left out of the written config.
    config = JSON.parse(JSON.stringify(config)) as Record<string, unknown>;
    this.keeper = await KeeperProcess.start({
      dir: this.dir,
      stateDir: this.stateDir,
      config: { refreshBefore: "10m", retryMin: "200ms", retryMax: "2s", remintInterval: "1s", providers: [this.providerConfig()], ...config },
      ...options,
    });
    return this.keeper;
  }

  /** git through the shim (default) or plain (`shim: false`). */
  git(args: string[], cwd: string, options: { shim?: boolean; env?: Record<string, string>; input?: string } = {}): Promise<GitResult> {
    const opts: GitOptions = {
      cwd,
      home: this.home,
      shimDir: options.shim === false ? undefined : this.shimDir,
      stateDir: this.stateDir,
      env: options.env,
      input: options.input,
    };
    return runGit(args, opts);
  }

  async close(): Promise<void> {
    await this.keeper?.stop();
    await this.server.stop();
    await this.github.stop();
  }

  async #seedRepos(): Promise<void> {
    const repos = join(this.dir, "repos");
    const plain = { home: this.home };
    for (const name of ["acme/lib", "acme/app", "globex/tools"]) {
      const bare = join(repos, `${name}.git`);
      mkdirSync(bare, { recursive: true });
      await must(runGit(["init", "--bare", "-q", "-b", "main", bare], { cwd: repos, ...plain }));
      const work = tempDir("gtk-seed-");
      await must(runGit(["init", "-q", "-b", "main", work], { cwd: work, ...plain }));
      writeFileSync(join(work, "README.md"), `# ${name}\n`);
      await must(runGit(["add", "."], { cwd: work, ...plain }));
      if (name === "acme/app") {
        // The submodule is added from the local path, then pointed at the HTTP URL.
        await must(runGit(["-c", "protocol.file.allow=always", "submodule", "add", "-q", join(repos, "acme/lib.git"), "lib"], { cwd: work, ...plain }));
        await must(runGit(["config", "-f", ".gitmodules", "submodule.lib.url", this.repoUrl("acme/lib")], { cwd: work, ...plain }));
        await must(runGit(["add", ".gitmodules"], { cwd: work, ...plain }));
      }
      await must(runGit(["commit", "-q", "-m", `seed ${name}`], { cwd: work, ...plain }));
      await must(runGit(["push", "-q", bare, "main"], { cwd: work, ...plain }));
    }
  }
}

export async function must(result: Promise<GitResult> | GitResult): Promise<GitResult> {
  const r = await result;
  if (r.exitCode !== 0) throw new Error(`git failed (${r.exitCode}):\n${r.stderr}`);
  return r;
}
