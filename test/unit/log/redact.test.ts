import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../../src/log/logger.ts";
import { fingerprint, Redactor } from "../../../src/log/redact.ts";
import { fakeGhToken, fakePemBlock } from "../../support/fake-secrets.ts";

const r = new Redactor();

describe("redaction", () => {
  it("hides GitHub tokens of any length, old and new formats", () => {
    const long = `ghs_${"A1b2".repeat(40)}`;
    for (const token of [fakeGhToken("16C7e42F292c6912E7710c838347Ae178B4a"), long, "ghp_abc123DEF456ghi789", "github_pat_11ABCDEFG_xyz"]) {
      const out = r.redact(`token ${token} here`);
      expect(out).not.toContain(token);
      expect(out).not.toContain(token.slice(4, 20));
    }
    expect(r.redact(long)).toContain(fingerprint(long));
  });

  it("hides JWTs, Authorization values, URL passwords and PEM blocks", () => {
    const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOjEyMzQ1fQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
    expect(r.redact(`jwt=${jwt}`)).not.toContain("c2lnbmF0dXJl");
    expect(r.redact("AUTHORIZATION: basic eC1hY2Nlc3MtdG9rZW46c2VjcmV0")).toBe("AUTHORIZATION: basic [redacted]");
    expect(r.redact("authorization: Bearer abc.def")).not.toContain("abc.def");
    expect(r.redact("fetching https://x-access-token:s3cr3t-value@github.com/acme/app")).toBe(
      "fetching https://x-access-token:[redacted]@github.com/acme/app",
    );
    const pem = fakePemBlock("RSA", "MIIEowIBAAKCAQEA").trim();
    expect(r.redact(`key: ${pem} end`)).toBe("key: [redacted PEM block] end");
  });

  it("hides GitLab tokens of every kind by prefix", () => {
    for (const prefix of ["glpat-", "gloas-", "glrt-", "glcbt-", "gldt-", "glptt-", "glft-", "glsoat-"]) {
      const token = `${prefix}${"xY9_".repeat(6)}`;
      const out = r.redact(`token ${token} here`);
      expect(out, prefix).not.toContain(token.slice(prefix.length));
      expect(out).toContain(fingerprint(token));
    }
  });

  it("hides a registered token whose format no pattern knows", () => {
    const redactor = new Redactor();
    redactor.addSecret("opaque-token-value-1234");
    expect(redactor.redact("got opaque-token-value-1234!")).toBe(`got [redacted ${fingerprint("opaque-token-value-1234")}]!`);
  });

  it("is applied to every log record, message and fields alike", () => {
    const stream = new PassThrough();
    let out = "";
    stream.on("data", (c: Buffer) => (out += c.toString()));
    const redactor = new Redactor();
    redactor.addSecret("zzzz-secret-zzzz");
    const log = createLogger({ redactor, format: "json", stream });
    log.info(`minted ${fakeGhToken("abcdefghijklmnopqrstuvwxyz0123456789")}`, { token: "zzzz-secret-zzzz", nested: { url: "https://u:p4ss@h/x" } });
    expect(out).not.toContain("abcdefghijklmnop");
    expect(out).not.toContain("zzzz-secret-zzzz");
    expect(out).not.toContain("p4ss");
    expect(JSON.parse(out).message).toContain("[redacted sha256:");
  });
});
