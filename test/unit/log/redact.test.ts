import { createHash } from "node:crypto";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../../src/log/logger.ts";
import { fingerprint, Redactor, verbatim } from "../../../src/log/redact.ts";
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

// Deterministic secrets of 24 characters, as random as minted tokens look.
const secretNo = (i: number, length = 24) => createHash("sha256").update(`secret ${i}`).digest("base64url").slice(0, length);
const replaced = (secret: string) => `[redacted ${fingerprint(secret)}]`;
const base64url = (text: string) => Buffer.from(text).toString("base64url");
// Stateless GitHub tokens all start alike: `ghs_` and the same JWT header, 40 characters.
const statelessHeader = fakeGhToken(`${base64url('{"alg":"RS256","typ":"JWT"}')}.`);
const stateless = (i: number) => `${statelessHeader}${base64url(`{"sub":"installation/${i}"}`)}.${secretNo(i + 1_000_000, 43)}`;

describe("registered secrets, 20,000 of them", () => {
  const secrets = Array.from({ length: 20_000 }, (_, i) => (i % 20 === 0 ? stateless(i) : secretNo(i)));
  const nested = ["nestedAA-short", "nestedAA-short-and-longer"];
  const sharing = ["sharedAB-first-secret", "sharedAB-second-secret"];
  const overlapping = ["overlapA-0123456789", "0123456789-overlapB"];
  const crowded = new Redactor();
  // The shorter ones first: a redactor going through secrets in order would leave the longer's tails.
  for (const s of [...nested, ...sharing, ...overlapping, ...secrets]) crowded.addSecret(s);

  it("still redacts every one of them where it appears", () => {
    expect(crowded.redact(secrets.join(" "))).toBe(secrets.map(replaced).join(" "));
    for (let i = 0; i < secrets.length; i += 97) {
      const s = secrets[i] as string;
      expect(crowded.redact(`before ${s} after`)).toBe(`before ${replaced(s)} after`);
    }
  });

  it("redacts a secret inside a longer word", () => {
    const s = secrets[1234] as string;
    expect(crowded.redact(`xx${s}yy`)).toBe(`xx${replaced(s)}yy`);
    expect(crowded.redact(`${s}${s}`)).toBe(`${replaced(s)}${replaced(s)}`);
  });

  it("replaces the longest of the secrets that start at one place, and a shorter one alone", () => {
    const [short, long] = nested as [string, string];
    expect(crowded.redact(`a ${long} b`)).toBe(`a ${replaced(long)} b`);
    expect(crowded.redact(`a ${short} b`)).toBe(`a ${replaced(short)} b`);
    expect(crowded.redact(`a ${short}-and-l b`)).toBe(`a ${replaced(short)}-and-l b`);
  });

  it("redacts two secrets that share their first 8 characters, together and apart", () => {
    const [first, second] = sharing as [string, string];
    expect(crowded.redact(`${first}, ${second}`)).toBe(`${replaced(first)}, ${replaced(second)}`);
    expect(crowded.redact(`only ${second}`)).toBe(`only ${replaced(second)}`);
  });

  it("leaves no part of two secrets that overlap in the text", () => {
    const [a, b] = overlapping as [string, string];
    expect(crowded.redact("overlapA-0123456789-overlapB!")).toBe(`${replaced(a)}${replaced(b)}!`);
  });

  it("leaves a text without secrets as it is, the start 1,000 of them share too", () => {
    expect(crowded.redact("nothing to see here, sharedAB-third, overlapA-")).toBe("nothing to see here, sharedAB-third, overlapA-");
    expect(crowded.redactValue(verbatim(`${statelessHeader} a header alone`))).toBe(`${statelessHeader} a header alone`);
  });

  it("does the same work per string with 20,000 secrets known as with 1", () => {
    const target = stateless(40);
    const other = stateless(7_777_777);
    const line = JSON.stringify({
      message: "token request",
      audit: true,
      decision: "allowed",
      iss: "https://token.actions.githubusercontent.com",
      sub: "repo:acme/app:ref:refs/heads/main",
      reason: `the host refused ${target}; an unregistered one of the same format: ${other}`,
      fingerprint: fingerprint(target),
    });
    const one = new Redactor();
    one.addSecret(target);
    const workOf = (redactor: Redactor) => {
      const before = redactor.work;
      const out = redactor.redact(line);
      const after = redactor.work;
      return { out, lookups: after.lookups - before.lookups, comparisons: after.comparisons - before.comparisons };
    };
    const few = workOf(one);
    const many = workOf(crowded);
    expect(many.out).toBe(few.out);
    expect(few.out).not.toContain(target);
    expect(many.lookups).toBe(few.lookups);
    expect(many.lookups).toBeLessThanOrEqual(line.length);
    expect(many.comparisons).toBe(few.comparisons);
  });
});

describe("registered secrets with an expiry", () => {
  const T = Date.UTC(2026, 11, 7, 12, 0, 0);

  it("forgets a secret once its expiry has passed, and keeps one without expiry", () => {
    let now = T;
    const r = new Redactor({ now: () => now });
    r.addSecret("expiring-secret-1", T + 60_000);
    r.addSecret("lasting-secret-22");
    now = T + 59_999;
    expect(r.redact("expiring-secret-1 lasting-secret-22")).toBe(`${replaced("expiring-secret-1")} ${replaced("lasting-secret-22")}`);
    now = T + 60_000;
    expect(r.redact("expiring-secret-1 lasting-secret-22")).toBe(`expiring-secret-1 ${replaced("lasting-secret-22")}`);
    expect(r.secretCount).toBe(1);
  });

  it("keeps the later expiry of a secret registered twice, and forgets one when told", () => {
    let now = T;
    const r = new Redactor({ now: () => now });
    r.addSecret("twice-registered", T + 120_000);
    r.addSecret("twice-registered", T + 60_000);
    now = T + 90_000;
    expect(r.redact("twice-registered")).toBe(replaced("twice-registered"));
    now = T + 120_000;
    expect(r.redact("twice-registered")).toBe("twice-registered");
    r.addSecret("forgotten-when-told", T + 3_600_000);
    r.forgetSecret("forgotten-when-told");
    expect(r.redact("forgotten-when-told")).toBe("forgotten-when-told");
  });

  it("does not keep a secret registered after its expiry", () => {
    const r = new Redactor({ now: () => T });
    r.addSecret("already-expired-secret", T - 1);
    expect(r.redact("already-expired-secret")).toBe("already-expired-secret");
  });

  it("keeps at most 50,000, dropping those expiring first", () => {
    const r = new Redactor({ now: () => T });
    r.addSecret("expires-first-secret", T + 60_000);
    r.addSecret("never-expiring-secret");
    for (let i = 0; i < 49_999; i++) r.addSecret(secretNo(i), T + 3_600_000 + i);
    expect(r.secretCount).toBe(50_000);
    expect(r.redact("expires-first-secret")).toBe("expires-first-secret");
    r.addSecret(secretNo(50_000), T + 7_200_000);
    expect(r.secretCount).toBe(50_000);
    expect(r.redact(`${secretNo(0)} ${secretNo(1)}`)).toBe(`${secretNo(0)} ${replaced(secretNo(1))}`);
    expect(r.redact("never-expiring-secret")).toBe(replaced("never-expiring-secret"));
  });

  it("checks its options", () => {
    expect(() => new Redactor({ maxSecrets: 0 })).toThrow("Expected the `maxSecrets` option to be a positive integer, got `0` (number)");
  });
});

describe("verbatim values", () => {
  const registered = "registered-opaque-token-0001";
  const jwtShaped = `${base64url('{"alg":"RS256"}')}.${base64url('{"sub":"x"}')}.${"s1G".repeat(10)}`;
  const claims = {
    sub: "repo:acme/app:ref:refs/heads/main",
    job_workflow_ref: "acme/app/.github/workflows/build.yml@refs/heads/main",
    looks_like_a_jwt: jwtShaped,
    query: "run?token=abc123&x=1",
    list: ["token=in-an-array", { deeper: `holds ${registered} inside` }],
  };
  const expected = { ...claims, list: ["token=in-an-array", { deeper: `holds ${replaced(registered)} inside` }] };

  function logged(format: "json" | "text", meta: Record<string, unknown>): Record<string, unknown> {
    const stream = new PassThrough();
    let out = "";
    stream.on("data", (c: Buffer) => (out += c.toString()));
    const redactor = new Redactor();
    redactor.addSecret(registered);
    createLogger({ redactor, format, stream }).info("token request", meta);
    return JSON.parse(format === "json" ? out : out.slice(out.indexOf("{"))) as Record<string, unknown>;
  }

  for (const format of ["json", "text"] as const) {
    it(`are logged as they are but for registered secrets, as plain values (${format})`, () => {
      const record = logged(format, { audit: true, claims: verbatim(claims), sub: verbatim(claims.sub), asked: { query: "run?token=abc123" } });
      expect(record.claims).toEqual(expected);
      expect(record.sub).toBe(claims.sub);
      expect(record.asked).toEqual({ query: "run?token=[redacted]" });
    });
  }

  it("keep shape patterns away only from what they wrap", () => {
    const r = new Redactor();
    r.addSecret(registered);
    expect(r.redactValue({ a: verbatim(jwtShaped), b: jwtShaped, c: [verbatim(`${registered} token=x`)] })).toEqual({
      a: jwtShaped,
      b: "[redacted JWT]",
      c: [`${replaced(registered)} token=x`],
    });
  });
});
