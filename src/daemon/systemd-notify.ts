import type { Logger } from "../log/logger.ts";

/**
 * Tells systemd (Type=notify) that the daemon is ready or stopping. Node.js cannot send to a
 * unix datagram socket, so this runs systemd-notify for the daemon's pid; the unit sets
 * NotifyAccess=all so that systemd accepts it from the child. Does nothing outside systemd.
 */
export async function notifySystemd(fields: Record<string, string>, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (!env.NOTIFY_SOCKET) return;
  const args = [`--pid=${process.pid}`, ...Object.entries(fields).map(([k, v]) => `${k}=${v}`)];
  try {
    const { execa } = await import("execa");
    await execa("systemd-notify", args, { timeout: 5_000, env: { NOTIFY_SOCKET: env.NOTIFY_SOCKET }, extendEnv: false });
  } catch (error) {
    log.warn("could not notify systemd", { error: (error as Error).message.split("\n")[0] });
  }
}
