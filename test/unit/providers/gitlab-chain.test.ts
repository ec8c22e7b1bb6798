import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GitLabProviderConfig } from "../../../src/providers/gitlab/gitlab-config.ts";
import { createGitLabProvider, secretFiles, type SecretFiles } from "../../../src/providers/gitlab/gitlab-provider.ts";
import { FakeGitLab } from "../../fakes/fake-gitlab.ts";
import { TokenLedger } from "../../fakes/token-ledger.ts";
import { sharedProviderConfig } from "../../support/config-fixtures.ts";
import { removeTempDirs, tempDir } from "../../support/temp-dir.ts";

/**
 * GitLab makes refresh tokens single-use: a refresh whose new token cannot be saved loses the
 * chain for good. The file layer is swapped for one that fails as a read-only folder would (the
 * tests run as root, for whom no permission bit says no).
 */
describe("the GitLab token chain when its file cannot be written", () => {
  let gitlab: FakeGitLab;
  beforeAll(async () => {
    gitlab = new FakeGitLab(new TokenLedger(), 60_000);
    await gitlab.start();
  });
  afterAll(async () => {
    await gitlab.stop();
    removeTempDirs();
  });

  function setup(files: SecretFiles) {
    const file = join(tempDir(), "gitlab.refresh");
    writeFileSync(file, `${gitlab.firstRefreshToken()}\n`, { mode: 0o600 });
    const config = { ...sharedProviderConfig("gl"), type: "gitlab", grant: "refresh-token", apiBase: gitlab.url, clientId: gitlab.clientId, refreshTokenFile: file, tokenKind: "personal", rotateTokenLifetime: 7 * 86_400_000 } as unknown as GitLabProviderConfig;
    return { file, provider: createGitLabProvider(config, Date.now, files) };
  }
  const readOnly = (error = "EROFS"): SecretFiles => ({
    probe: () => {
      throw Object.assign(new Error(`${error}: read-only file system`), { code: error });
    },
    write: () => {
      throw Object.assign(new Error(`${error}: read-only file system`), { code: error });
    },
  });

  it("a folder it cannot write to: nothing is sent to GitLab, and the error says what to fix", async () => {
    const { file, provider } = setup(readOnly());
    const before = gitlab.refreshLog.length;
    await expect(provider.mint("shared")).rejects.toThrow(/cannot write beside the refresh token file .* nothing was sent to GitLab/);
    expect(gitlab.refreshLog.length).toBe(before);
    // The chain is intact: the stored token still refreshes once the folder is writable.
    const stored = readFileSync(file, "utf8").trim();
    expect(gitlab.liveRefreshTokens.has(stored)).toBe(true);
  });

  it("a write that fails after GitLab answered: the new secret is kept in memory and saved, and used, at the next mint", async () => {
    let failWrites = true;
    const flaky: SecretFiles = {
      probe: secretFiles.probe,
      write: (path, data) => {
        if (failWrites) throw Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" });
        secretFiles.write(path, data);
      },
    };
    const { file, provider } = setup(flaky);
    await expect(provider.mint("shared")).rejects.toThrow(/kept in memory and written before the next refresh, but a restart would lose it/);
    const first = gitlab.refreshLog.at(-1);
    expect(first?.accepted).toBe(true);
    // Still failing: the kept secret is not spent on another refresh.
    await expect(provider.mint("shared")).rejects.toThrow(/cannot be written/);
    expect(gitlab.refreshLog.at(-1)).toBe(first);
    failWrites = false;
    const minted = await provider.mint("shared");
    expect(minted.token).toBeTruthy();
    expect(gitlab.refreshLog.at(-1)?.accepted).toBe(true);
    expect(gitlab.liveRefreshTokens.has(readFileSync(file, "utf8").trim())).toBe(true);
  });
});
