import { chmodSync, chownSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { StoreError } from "../../../src/errors/keeper-error.ts";
import { ensurePrivateDir } from "../../../src/store/state-dir.ts";
import { MAX_SERVED_PREFIXES, originsText, TokenStore } from "../../../src/store/token-store.ts";
import { removeTempDirs, tempDir } from "../../support/temp-dir.ts";

afterAll(removeTempDirs);
const record = { token: "t0k3n-value", username: "x-access-token", expires: 2_000, refreshAt: 1_500, mintedAt: 1_000, serial: 3, config: "abc123" };

describe("state dir", () => {
  it("is created 0700 with token files 0600", () => {
    const store = new TokenStore(join(tempDir(), "state"));
    store.init();
    store.writeToken("acme-app", "acme", record);
    expect(statSync(store.dir).mode & 0o777).toBe(0o700);
    expect(statSync(store.tokenPath("acme-app", "acme")).mode & 0o777).toBe(0o600);
    expect(store.readToken("acme-app", "acme")).toEqual(record);
    expect(readdirSync(join(store.tokensDir, "acme-app")).filter((n) => n.startsWith("."))).toEqual([]);
  });

  it("refuses a symlink", () => {
    const base = tempDir();
    mkdirSync(join(base, "real"), { mode: 0o700 });
    symlinkSync(join(base, "real"), join(base, "link"));
    expect(() => ensurePrivateDir(join(base, "link"))).toThrow(/is a symlink/);
  });

  it("refuses a directory open to group or others", () => {
    const dir = join(tempDir(), "open");
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    expect(() => ensurePrivateDir(dir)).toThrow(/open to group or others \(mode 755\)/);
    try {
      ensurePrivateDir(dir);
    } catch (error) {
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).hint).toContain("chmod 700");
    }
  });

  it("refuses a directory another user created", () => {
    const dir = join(tempDir(), "theirs");
    mkdirSync(dir, { mode: 0o700 });
    if (process.getuid?.() === 0) chownSync(dir, 12345, 12345);
    expect(() => ensurePrivateDir(dir, process.getuid?.() === 0 ? 0 : 99999)).toThrow(/belongs to uid/);
  });

  it("recreates a deleted state dir on the next write", () => {
    const base = tempDir();
    const store = new TokenStore(join(base, "state"));
    store.init();
    store.writeToken("p", "acme", record);
    rmSync(store.dir, { recursive: true });
    store.writeToken("p", "acme", record);
    expect(store.readToken("p", "acme")?.serial).toBe(3);
  });
});

describe("originsText: what the shim keys its overrides on", () => {
  const base = { provider: "p", pathPrefix: "/", perOwner: true };
  it("lists each served owner's prefix, never the whole host, when owners are listed", () => {
    expect(originsText([{ ...base, origin: "https://github.com", owners: ["acme", "globex"] }])).toBe("https://github.com - /acme/ /globex/\n");
  });
  it("lists the provider's path prefix when it serves any owner, with the ssh mark", () => {
    expect(originsText([{ ...base, origin: "https://gitlab.example", pathPrefix: "/group/", owners: undefined, sshToHttps: true }])).toBe("https://gitlab.example ssh /group/\n");
  });
  it("drops a prefix inside another one, and serves nothing for an empty owner list", () => {
    const routes = [
      { ...base, origin: "https://h", owners: ["acme"] },
      { ...base, provider: "q", origin: "https://h", owners: undefined },
      { ...base, provider: "r", origin: "https://e", owners: [] },
    ];
    expect(originsText(routes)).toBe("https://h - /\nhttps://e -\n");
  });
});

describe("originsText with many owners", () => {
  it("keys on the whole host past MAX_SERVED_PREFIXES owners, so that a git call stays cheap", () => {
    const owners = Array.from({ length: MAX_SERVED_PREFIXES + 1 }, (_, i) => `o${i}`);
    expect(originsText([{ origin: "https://h", provider: "p", pathPrefix: "/", perOwner: true, owners }])).toBe("https://h - /\n");
  });
});
