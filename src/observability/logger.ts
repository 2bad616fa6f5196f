import { pino, type DestinationStream, type Logger } from "pino";

/**
 * The one logger. Payloads are PHI and API keys are secrets: the redaction
 * list below removes them wherever they appear in a log object, and request
 * logs never include bodies (src/api/app.ts).
 */
export const REDACT_PATHS = [
  "payload",
  "*.payload",
  "data",
  "*.data",
  "key",
  "*.key",
  "apiKey",
  "*.apiKey",
  "token",
  "*.token",
  "req.headers.authorization",
  "req.headers.cookie",
  "res.headers['set-cookie']",
];

export function createLogger(role: string, level = process.env.LOG_LEVEL ?? "info", destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { role, pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
  };
  return destination ? pino(options, destination) : pino(options);
}
