import { type Logger, pino } from "pino";

/** Structured JSON logs (DESIGN §10) to stderr, so stdout stays for command output (keys, plans). */
export function createLogger(level: string, name = "shotlist"): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination(2));
}
