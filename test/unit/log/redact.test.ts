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

  // The formats each host documents, whole: no part of 16 characters or more may remain.
  const b64url = (text: string) => Buffer.from(text).toString("base64url");
  const statelessGhs = `ghs_${b64url('{"alg":"RS256","typ":"JWT"}')}.${b64url(JSON.stringify({ iss: "github", sub: "installation/42", exp: 2_000_000_000, repos: "a".repeat(300) }))}.${"Sig_-".repeat(40)}`;
  const FORMATS: [string, string][] = [
    ["GitHub classic PAT", `ghp_${"aB3".repeat(12)}`],
    ["GitHub OAuth", `gho_${"aB3".repeat(12)}`],
    ["GitHub user-to-server", `ghu_${"aB3".repeat(12)}`],
    ["GitHub installation (classic)", `ghs_${"aB3".repeat(12)}`],
    ["GitHub refresh", `ghr_${"aB3".repeat(25)}`],
    ["GitHub fine-grained PAT", `github_pat_11${"A".repeat(20)}_${"b9".repeat(30)}`],
    ["GitHub stateless installation token (ghs_ + JWT, ~520 chars)", statelessGhs],
    ["Entra ID / Kubernetes JWT", `${b64url('{"alg":"RS256","kid":"x"}')}.${b64url('{"aud":"499b84ac-1321-427f-aa17-267ca6975798"}')}.${"s1G".repeat(40)}`],
    ["Azure DevOps PAT (84-char)", `${"a1B2".repeat(19)}AZDO${"c3D4"}`],
    ["GitLab personal", `glpat-${"xY9_".repeat(5)}`],
    ["GitLab runner authentication", `glrt-${"xY9_".repeat(5)}`],
    ["GitLab CI job", `glcbt-${"xY9_".repeat(5)}`],
    ["GitLab legacy runner registration", `GR1348941${"xY9_".repeat(5)}`],
  ];
  for (const [name, token] of FORMATS) {
    it(`hides a ${name} whole, inside text and after other characters`, () => {
      for (const text of [`token ${token} here`, `stderr: x-access-token:${token}@host`, `"password":"${token}"`, `GH_TOKEN=${token}`]) {
        const out = r.redact(text);
        for (let i = 0; i + 16 <= token.length; i += 8) expect(out, `${name}: ${text.slice(0, 40)}`).not.toContain(token.slice(i, i + 16));
      }
    });
  }

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
