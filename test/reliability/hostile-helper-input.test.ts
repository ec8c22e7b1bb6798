import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { formatTokenRecord } from "../../src/store/token-file.ts";
import { shellsToTest, shimCopyFor } from "../support/shells.ts";
import { removeTempDirs, tempDir } from "../support/temp-dir.ts";
import { fileGroup, scenario } from "./scenario.ts";
import { allowedToken, answeredToken, generate, rng, REPO_SCOPES, ROUTES, TOKENS } from "../support/helper-inputs.ts";

const group = `hostile input to the credential helper (${fileGroup(import.meta.url)})`;
const COUNT = 10_500;

describe("the helper fed generated hostile input", () => {
  let state: string;

  beforeAll(() => {
    state = join(tempDir(), "state");
    mkdirSync(join(state, "tokens", "gh"), { recursive: true, mode: 0o700 });
    mkdirSync(join(state, "tokens", "local"), { recursive: true });
    mkdirSync(join(state, "requests"), { recursive: true });
    writeFileSync(join(state, "routes"), ROUTES);
    writeFileSync(join(state, "daemon.pid"), `${process.pid}\n`);
    const now = Math.floor(Date.now() / 1000);
    const write = (provider: string, scope: string, token: string) =>
      writeFileSync(join(state, "tokens", provider, scope), formatTokenRecord({ token, username: "x-access-token", expires: now + 3600, refreshAt: now + 3000, mintedAt: now, serial: 1 }));
    write("gh", "acme", TOKENS.acme!);
    write("gh", "globex", TOKENS.globex!);
    write("local", "shared", TOKENS.any!);
    mkdirSync(join(state, "tokens", "repos"), { recursive: true });
    for (const scope of REPO_SCOPES) write("repos", scope, TOKENS[`repos/${scope}`]!);
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
        const password = answeredToken(String(r.stdout));
        const allowed = allowedToken(input);
        const badLine = String(r.stdout).split("\n").find((l) => l && !/^(username|password|password_expiry_utc|quit|capability\[\]|authtype|credential|ephemeral)=/.test(l));
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
  }, 900_000);
});
