import pino, { type Level, type Logger } from 'pino';
import type { LogLevel as TemporalLogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import { routeKafkaLogs, type KafkaLogLevel } from '../events/kafka';

/**
 * The one logger of every process: JSON lines (pino), info and below to stdout, warn and above to
 * stderr, at LOG_LEVEL. Lines carry ids (commandId, requestId, workflowId, activityType, incident
 * ids), codes and bounded error texts, never a payload: no email address, display name or comment.
 * As a last guard, anything that looks like an email address is masked and fields named like personal
 * data are redacted. Temporal's own logs (the Runtime's logger: activities' `log`, workflows' `log`,
 * the SDK and its Rust core) and kafkajs's logs come through this logger too.
 */

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];

/** Ids a line may be bound to. */
export interface LogFields {
  commandId?: string;
  commandType?: string;
  requestId?: string;
  workflowId?: string;
  incidentId?: string;
  [field: string]: unknown;
}

/** The callback shape that code outside the processes' wiring takes; the logger stands behind it. */
export type LogLine = (message: string, fields?: LogFields) => void;

const EMAIL = /[^\s@<>"'(),;:[\]]+@[^\s@<>"'(),;:[\]]+\.[A-Za-z]{2,}/g;

/** Masks anything that looks like an email address. */
export function scrub(text: string): string {
  return text.replace(EMAIL, '<email>');
}

function scrubValue(value: unknown): unknown {
  if (typeof value === 'string') return scrub(value);
  if (value instanceof Error) return scrub(`${value.name}: ${value.message}`).slice(0, 500);
  return value;
}

function initialLevel(): LogLevelName {
  const given = process.env.LOG_LEVEL;
  return (LOG_LEVELS as readonly string[]).includes(given ?? '') ? (given as LogLevelName) : 'info';
}

const PERSONAL_FIELDS = ['email', 'displayName', 'firstName', 'lastName', 'comment', 'message', 'noteForRequester', 'password', 'secret', 'token'];

/** A logger with this project's settings; `destination` (tests) in place of stdout/stderr. */
export function createLogger(destination?: pino.DestinationStream): Logger {
  const streams =
    destination ??
    pino.multistream(
      [
        { level: 'trace', stream: process.stdout },
        { level: 'warn', stream: process.stderr },
      ],
      { dedupe: true },
    );
  return pino(
    {
      level: initialLevel(),
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: PERSONAL_FIELDS.flatMap((field) => [field, `*.${field}`]), censor: '[redacted]' },
      hooks: {
        logMethod(args, method) {
          const scrubbed = args.map((arg, index) => {
            if (index === 0 && typeof arg === 'object' && arg !== null && !(arg instanceof Error)) {
              return Object.fromEntries(Object.entries(arg as Record<string, unknown>).map(([key, value]) => [key, scrubValue(value)]));
            }
            return scrubValue(arg);
          });
          method.apply(this, scrubbed as Parameters<typeof method>);
        },
      },
    },
    streams,
  );
}

export const logger: Logger = createLogger();

/** A child logger of one part of a process (`ingress`, `relay`, `worker`, ...). */
export function componentLogger(component: string, fields: LogFields = {}): Logger {
  return logger.child({ component, ...fields });
}

/**
 * A `LogLine` for code that takes a callback: each line goes to `base` with its fields bound; a line
 * naming an incident is an error, others are logged at `level`.
 */
export function logLine(base: Logger, level: Level = 'info'): LogLine {
  return (message, fields) => {
    const at: Level = /^incident /.test(message) ? 'error' : level;
    base[at](fields ?? {}, message);
  };
}

/** Sets the level from the configuration (LOG_LEVEL) and routes kafkajs's logs here. Once per process. */
export function configureLogging(config: { LOG_LEVEL: LogLevelName }): void {
  logger.level = config.LOG_LEVEL;
  const kafka = componentLogger('kafkajs');
  const levels: Record<KafkaLogLevel, Level> = { error: 'error', warn: 'warn', info: 'info', debug: 'debug' };
  routeKafkaLogs((level, message, fields) => kafka[levels[level]](fields, message));
}

const TEMPORAL_LEVELS: Record<TemporalLogLevel, Level> = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' };

/** Temporal's metadata as ids: the request id of an `app-request-<requestId>` workflow is named too. */
function temporalFields(meta: LogMetadata | undefined): LogFields {
  const fields: LogFields = {};
  for (const [key, value] of Object.entries(meta ?? {})) fields[key] = scrubValue(value);
  const workflowId = typeof fields.workflowId === 'string' ? fields.workflowId : undefined;
  if (workflowId?.startsWith('app-request-') && fields.requestId === undefined) fields.requestId = workflowId.slice('app-request-'.length);
  return fields;
}

/** Temporal's `Logger` on top of this logger (for `Runtime.install({ logger })`). */
export function temporalLogger(base: Logger = componentLogger('temporal')): TemporalLogger {
  // The SDK logs every task at DEBUG: fields are only made for lines the level lets through.
  const at = (level: TemporalLogLevel) => (message: string, meta?: LogMetadata) => {
    const to = TEMPORAL_LEVELS[level] ?? 'info';
    if (base.isLevelEnabled(to)) base[to](temporalFields(meta), message);
  };
  return {
    log: (level, message, meta) => at(level)(message, meta),
    trace: at('TRACE'),
    debug: at('DEBUG'),
    info: at('INFO'),
    warn: at('WARN'),
    error: at('ERROR'),
  };
}
