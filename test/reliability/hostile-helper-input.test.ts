import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { formatTokenRecord } from "../../src/store/token-file.ts";
import { shellsToTest, shimCopyFor } from "../support/shells.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { fileGroup, scenario } from "./scenario.ts";
import { fakeGhToken } from "../support/fake-secrets.ts";

const group = `hostile input to the credential helper (${fileGroup(import.meta.url)})`;
const COUNT = 10_500;
const TOKENS: Record<string, string> = { acme: fakeGhToken("HOSTILEacme".repeat(3)), globex: fakeGhToken("HOSTILEglobex".repeat(3)), any: "local-any-owner-token-0000003" };

// Deterministic pseudo-random numbers: a failure names its seed and input.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

const HOSTS = ["github.com", "GITHUB.COM", "GitHub.com", "github.com:443", "github.com:444", "github.com.", "github.com.evil.example", "evil.example#github.com", "evil.example", "xn--gthub-n4a.com", "gіthub.com", "github.com@evil.example", "127.0.0.1:8080", "127.0.0.1:8081", "localhost:8080", "[::1]:8080", "github.com\0", ""];
const PROTOCOLS = ["https", "http", "HTTPS", "ftp", "ssh", "file", ""];
const PATHS = ["acme/app.git", "globex/tools", "ACME/x", "initech/y", "../globex/x", "acme/../globex/x", "acme/%2e%2e/globex", "acme%2fglobex/x", "/acme/z", "acme", "", "a".repeat(5000), ".hidden/x", "acme/./x", "globex/../../acme/x", "any/r"];
const EXTRA = ["url=https://user:pass@github.com/acme/app", "username=someone", "password=guess", "wwwauth[]=Basic realm=x", "capability[]=authtype", "unknown=1", "path=globex/override", "host=evil.example", "=", "noequals", "protocol", `x=${"y".repeat(70_000)}`];

interface Input {
  text: string;
  protocol: string | undefined;
  host: string | undefined;
  path: string | undefined;
}

function generate(next: () => number): Input {
  const pick = <T,>(a: T[]) => a[Math.floor(next() * a.length)] as T;
  const fields: [string, string][] = [];
  const n = 1 + Math.floor(next() * 5);
  for (let i = 0; i < n; i++) {
    const r = next();
    if (r < 0.25) fields.push(["protocol", pick(PROTOCOLS)]);
    else if (r < 0.5) fields.push(["host", pick(HOSTS)]);
    else if (r < 0.75) fields.push(["path", pick(PATHS)]);
    else {
      const e = pick(EXTRA);
      const i = e.indexOf("=");
      fields.push(i < 0 ? [e, "\u0000"] : [e.slice(0, i), e.slice(i + 1)]);
    }
  }
  // As git reads them: the last value of a key wins.
  const last = (k: string) => [...fields].reverse().find(([key]) => key === k)?.[1];
  const lines = fields.map(([k, v]) => (v === "\u0000" ? k : `${k}=${v}`));
  const ending = next() < 0.5 ? "\n\n" : next() < 0.5 ? "\n" : "";
  return { text: lines.join("\n") + ending, protocol: last("protocol"), host: last("host"), path: last("path") };
}

/**
 * What a correct helper may answer for the input, from the same rules written out again. A
 * shell's `read` drops NUL bytes (git never sends one), so the model drops them too.
 */
function allowedToken(input: Input): string | undefined {
  const protocol = input.protocol?.replace(/\0/g, "");
  const host = (input.host ?? "").replace(/\0/g, "").toLowerCase();
  const path = `/${(input.path ?? "").replace(/^\//, "")}`.toLowerCase();
  if (/\/\.\.?(\/|$)|%2[ef]/.test(path)) return undefined;
  const owner = path.split("/")[1] ?? "";
  if (protocol === "https" && (host === "github.com" || host === "github.com:443")) return TOKENS[owner === "acme" || owner === "globex" ? owner : ""];
  // A shared token serves every path under its prefix, whatever the owner.
  if (protocol === "http" && host === "127.0.0.1:8080") return TOKENS.any;
  return undefined;
}

describe("the helper fed generated hostile input", () => {
  let state: string;

  beforeAll(() => {
    state = join(tempDir(), "state");
    mkdirSync(join(state, "tokens", "gh"), { recursive: true, mode: 0o700 });
    mkdirSync(join(state, "tokens", "local"), { recursive: true });
    mkdirSync(join(state, "requests"), { recursive: true });
    writeFileSync(join(state, "routes"), "https://github.com gh / owner acme,globex\nhttp://127.0.0.1:8080 local / shared *\n");
    writeFileSync(join(state, "daemon.pid"), `${process.pid}\n`);
    const now = Math.floor(Date.now() / 1000);
    const write = (provider: string, scope: string, token: string) =>
      writeFileSync(join(state, "tokens", provider, scope), formatTokenRecord({ token, username: "x-access-token", expires: now + 3600, refreshAt: now + 3000, mintedAt: now, serial: 1 }));
    write("gh", "acme", TOKENS.acme!);
    write("gh", "globex", TOKENS.globex!);
    write("local", "shared", TOKENS.any!);
  });

  afterAll(removeTempDirs);

  scenario(group, `${COUNT} generated inputs (over-long lines, NUL bytes, no blank line, repeated and unknown keys, look-alike hosts, other ports and protocols, IDN, climbing paths, URLs with userinfo), spread over dash, bash and busybox sh`, "never crashes; never answers for a host, port or protocol not configured; never gives one owner's token for another owner's path", async () => {
    const shells = shellsToTest();
    const shims = shells.map((s) => shimCopyFor(s));
    const next = rng(20261125);
    let answered = 0;
    let refused = 0;
    const mistakes: string[] = [];
    const inputs = Array.from({ length: COUNT }, () => generate(next));
    let index = 0;
    const worker = async () => {
      for (;;) {
        const i = index++;
        if (i >= inputs.length) return;
        const input = inputs[i]!;
        const shim = shims[i % shims.length]!;
        const r = await execa(join(shim, "git-credential-token-keeper"), ["get"], {
          input: input.text,
          env: { PATH: process.env.PATH, GIT_TOKEN_KEEPER_DIR: state, GIT_TOKEN_KEEPER_WAIT: "0" },
          extendEnv: false,
          reject: false,
          timeout: 10_000,
        });
        const password = /^password=(.*)$/m.exec(String(r.stdout))?.[1];
        const allowed = allowedToken(input);
        const badLine = String(r.stdout).split("\n").find((l) => l && !/^(username|password|password_expiry_utc|quit)=/.test(l));
        if (r.exitCode !== 0 || badLine !== undefined || (password !== undefined && password !== allowed)) {
          mistakes.push(`#${i} (${shells[i % shells.length]}) exit ${r.exitCode} answered ${password ? `${password.slice(0, 12)}…` : "nothing"} for ${JSON.stringify(input.text.slice(0, 120))}`);
        }
        if (password) answered++;
        else refused++;
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    expect(mistakes).toEqual([]);
    return `${COUNT} inputs over ${shells.join(", ")}: ${answered} answered (each the right owner's token for a configured scheme/host/port), ${refused} answered nothing, 0 crashes, 0 wrong answers`;
  }, 300_000);
});
