import winston from "winston";
import type { Redactor } from "./redact.ts";

import { isLogLevel, type LogFormat, type LogLevel } from "./log-level.ts";

export { isLogLevel, type LogFormat, type LogLevel };
export type Logger = winston.Logger;

/** JSON lines when not on a terminal (journald, CI logs, kubectl logs), readable lines on one. */
export function defaultLogFormat(stream: NodeJS.WriteStream = process.stderr): LogFormat {
  return stream.isTTY ? "text" : "json";
}

const SYMBOL_KEYS = [Symbol.for("level"), Symbol.for("message"), Symbol.for("splat")];

/**
 * Every record passes through the redactor before any transport sees it. Winston copies a
 * record's fields shallowly, so a `verbatim` field value reaches the redactor as it was passed,
 * and leaves it as a plain value.
 */
function redaction(redactor: Redactor) {
  return winston.format((info) => {
    const redacted = redactor.redactValue({ ...info }) as winston.Logform.TransformableInfo;
    for (const key of SYMBOL_KEYS) {
      const value = (info as unknown as Record<symbol, unknown>)[key];
      if (value !== undefined) (redacted as unknown as Record<symbol, unknown>)[key] = value;
    }
    return redacted;
  })();
}

export function createLogger(options: {
  redactor: Redactor;
  format?: LogFormat;
  level?: LogLevel;
  stream?: NodeJS.WritableStream;
}): Logger {
  const { redactor } = options;
  const format = options.format ?? defaultLogFormat();
  const render =
    format === "json"
      ? winston.format.json()
      : winston.format.printf((info) => {
          const { level, message, timestamp, ...meta } = info;
          const extra = Object.keys(meta).length ? ` ${JSON.stringify(meta)}` : "";
          return `${String(timestamp)} ${level.padEnd(5)} ${String(message)}${extra}`;
        });
  return winston.createLogger({
    level: options.level ?? "info",
    levels: { error: 0, warn: 1, info: 2, debug: 3 },
    format: winston.format.combine(redaction(redactor), winston.format.timestamp(), render),
    transports: [
      new winston.transports.Stream({ stream: options.stream ?? process.stderr }),
    ],
  });
}
