const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses `90s`, `10m`, `1h30m`, `500ms` or a bare number of seconds into milliseconds.
 * Returns undefined for anything else, so the caller can say which key was wrong.
 */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  for (let m = part.exec(text); m; m = part.exec(text)) {
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    matched = part.lastIndex;
  }
  return matched > 0 && matched === text.length ? total : undefined;
}

/** `1h2m3s` style, for status output. */
export function formatDuration(ms: number): string {
  const negative = ms < 0;
  let s = Math.round(Math.abs(ms) / 1000);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const text = h ? `${h}h${m}m${s}s` : m ? `${m}m${s}s` : `${s}s`;
  return negative ? `-${text}` : text;
}
