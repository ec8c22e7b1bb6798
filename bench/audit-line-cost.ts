// `node bench/audit-line-cost.ts ['{"known":[1,10000],"rounds":30,"linesPerRound":200}']`: the
// broker's audit line through the redactor with a number of minted tokens registered, as it
// runs in the broker (bench/broker-bench.ts starts it with the broker's V8 flags). Prints JSON:
// for each count, the median of the rounds in microseconds per line.
import { randomBytes } from "node:crypto";
import { fingerprint, Redactor, SECRET_GRACE_MS } from "../src/log/redact.ts";
import { fakeGhToken } from "../test/support/fake-secrets.ts";

export interface AuditLineOptions {
  known: number[];
  rounds: number;
  linesPerRound: number;
}

export interface AuditLineCost {
  tokens: number;
  usPerLine: number;
}

// The record the broker logs for an allowed request (src/broker/broker-server.ts), as the
// logger hands it to the redactor.
function auditRecord(token: string): Record<string, unknown> {
  return {
    level: "info",
    message: "token request",
    audit: true,
    decision: "allowed",
    identity: "github-actions",
    iss: "https://token.actions.githubusercontent.com",
    sub: "repo:acme/app:ref:refs/heads/main",
    claims: { repository: "acme/app", ref: "refs/heads/main", job_workflow_ref: "acme/deploy/.github/workflows/release.yml@refs/heads/main" },
    asked: { gitUrl: "https://github.com", owner: "acme", repository: "app" },
    policy: "policies[2]",
    repositories: ["app"],
    permissions: { contents: "read", metadata: "read" },
    fingerprint: fingerprint(token),
    expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** Times the audit line with each count of tokens known, the counts alternating in a shuffled order every round. */
export function measureAuditLine(options: AuditLineOptions): AuditLineCost[] {
  const expires = Date.now() + 3_600_000 + SECRET_GRACE_MS;
  const cases = options.known.map((tokens) => {
    const redactor = new Redactor();
    const minted = Array.from({ length: tokens }, () => fakeGhToken(randomBytes(27).toString("base64url").replace(/[-_]/g, "x")));
    for (const token of minted) redactor.addSecret(token, expires);
    return { tokens, redactor, record: auditRecord(minted[0] ?? "none"), samples: [] as number[] };
  });
  let sink = 0;
  for (let round = -3; round < options.rounds; round++) {
    for (const c of [...cases].sort(() => Math.random() - 0.5)) {
      const started = process.hrtime.bigint();
      for (let i = 0; i < options.linesPerRound; i++) sink += Object.keys(c.redactor.redactValue({ ...c.record }) as object).length;
      if (round >= 0) c.samples.push(Number(process.hrtime.bigint() - started) / 1e3 / options.linesPerRound);
    }
  }
  if (sink === 0) throw new Error("the redactor returned nothing");
  return cases.map((c) => ({ tokens: c.tokens, usPerLine: median(c.samples) }));
}

if (import.meta.main) {
  const options: AuditLineOptions = process.argv[2] ? (JSON.parse(process.argv[2]) as AuditLineOptions) : { known: [1, 10_000], rounds: 30, linesPerRound: 200 };
  process.stdout.write(`${JSON.stringify(measureAuditLine(options))}\n`);
}
