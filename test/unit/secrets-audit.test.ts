import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { leakedTokens, scanTree } from "../support/secrets-audit.ts";
import { fakeGhToken } from "../support/fake-secrets.ts";

describe("the secrets audit's file scan", () => {
  it("bites: finds a planted token in a .git/config and a log, and skips the state dir and *.secret files", () => {
    const dir = mkdtempSync(join(tmpdir(), "gtk-audit-"));
    try {
      const token = fakeGhToken("plantedPLANTEDplanted0123456789");
      mkdirSync(join(dir, "clone", ".git"), { recursive: true });
      writeFileSync(join(dir, "clone", ".git", "config"), `[remote "origin"]\n\turl = https://x:${token}@github.com/acme/app\n`);
      writeFileSync(join(dir, "keeper-1.log"), `{"message":"minted ${token}"}\n`);
      mkdirSync(join(dir, "state", "tokens"), { recursive: true });
      writeFileSync(join(dir, "state", "tokens", "acme"), `token=${token}\n`);
      writeFileSync(join(dir, "gitlab-token.secret"), `${token}\n`);
      const hits: string[] = [];
      const files = scanTree(dir, [token], (where) => hits.push(where), false);
      expect(files).toBe(2);
      expect(hits.sort()).toEqual([join(dir, "clone", ".git", "config"), join(dir, "keeper-1.log")]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("finds any part of 16 characters, not 15, and not the structure tokens share", () => {
    // Two tokens of one format, made here: a shared JWT header, each its own claims and signature.
    const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
    const header = `ghs_${part({ alg: "RS256", typ: "JWT" })}.`;
    const a = `${header}${part({ sub: "a" })}.${randomBytes(24).toString("base64url")}`;
    const b = `${header}${part({ sub: "b" })}.${randomBytes(24).toString("base64url")}`;
    expect(leakedTokens(`redacted: ${a.slice(50, 66)} here`, [a, b])).toEqual([a]);
    expect(leakedTokens(`redacted: ${a.slice(50, 65)} here`, [a, b])).toEqual([]);
    expect(leakedTokens(`a header alone: ${header}`, [a, b])).toEqual([]);
    expect(leakedTokens(`whole: ${b}`, [a, b])).toEqual([b]);
  });
});
