import { formatDuration } from "../providers/settings/duration.ts";
import { daemonDown, readStatusFile, type StatusFile } from "../store/daemon-status.ts";
import { cliStateDir } from "./cli-state-dir.ts";

/** `status [--json]`: exit 0 only when the daemon is alive and nothing is failing. */
export function statusCommand(options: { config?: string | undefined; json?: boolean | undefined }): number {
  const stateDir = cliStateDir(options.config);
  const status = readStatusFile(stateDir);
  const down = daemonDown(status, stateDir);
  const providerErrors = status?.providers.filter((p) => p.error) ?? [];
  const failing = status?.tokens.filter((t) => t.failing) ?? [];
  // The file's own verdict counts too: it lists at most 200 tokens, and judges them all.
  const healthy = !down && status?.healthy !== false && providerErrors.length === 0 && failing.length === 0;
  if (options.json) {
    process.stdout.write(`${JSON.stringify(statusJson(status, stateDir, down, healthy), null, 2)}\n`);
    return healthy ? 0 : 1;
  }
  if (down || !status) {
    process.stderr.write(`git-token-keeper: ${down}\n`);
    return 1;
  }
  const now = Date.now();
  process.stdout.write(
    `git-token-keeper: ${healthy ? "healthy" : "FAILING"}; daemon pid ${status.pid}, up ${formatDuration(now - Date.parse(status.startedAt))}, state dir ${stateDir}\n`,
  );
  const rows = [["PROVIDER", "GIT URL", "OWNER", "EXPIRES IN", "LAST MINT", "LAST ERROR"]];
  for (const t of status.tokens) {
    rows.push([
      t.provider,
      t.gitUrl,
      t.owner,
      t.expiresAt ? formatDuration(Date.parse(t.expiresAt) - now) : "no token",
      t.lastMint ?? "-",
      t.lastError ?? "-",
    ]);
  }
  for (const p of providerErrors) rows.push([p.name, p.gitUrl, "?", "-", "-", p.error ?? ""]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  for (const row of rows) process.stdout.write(`${row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")}\n`);
  if (status.tokens.length === 0 && providerErrors.length === 0) process.stdout.write("(no tokens yet: owners are minted on first use)\n");
  if (status.lastReload && !status.lastReload.ok) {
    process.stdout.write(`config reload rejected at ${status.lastReload.at}; the previous config keeps running: ${status.lastReload.error}\n`);
  }
  return healthy ? 0 : 1;
}

/**
 * `status --json` (docs/status-json.md): the file the daemon last wrote, with what was checked
 * now written over it: a daemon killed with SIGKILL left `"state": "running", "healthy": true`,
 * and the live checks say it is neither.
 */
export function statusJson(status: StatusFile | undefined, stateDir: string, down: string | undefined, healthy: boolean): Record<string, unknown> {
  const now = Date.now();
  return {
    schema: 1,
    ...status,
    stateDir,
    alive: !down,
    healthy,
    state: !status ? "never-run" : down ? (status.state === "running" ? "dead" : "stopped") : "running",
    reason: down ?? null,
    providers: status?.providers ?? [],
    tokens: (status?.tokens ?? []).map((t) => ({ ...t, expired: t.expiresAt !== null && Date.parse(t.expiresAt) <= now })),
  };
}
