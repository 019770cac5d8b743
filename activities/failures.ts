import { log as activityLog } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';

/**
 * Failures are transient (a service is down or busy: waiting cures them, so they are retried without
 * end and nothing is lost) or permanent (data that no store accepts, a bug: retrying cannot help, so
 * the one command ends with INTERNAL_ERROR and an incident id, and everything else goes on).
 */

/** PostgreSQL SQLSTATE classes and codes that waiting can cure. */
const TRANSIENT_SQLSTATE = /^(08|53|57P0[123]|58|40001|40P01|55P03|55006|23505)/;
/** Prisma codes for an unreachable, busy or conflicting database (a unique clash is a race: a retry finds the row). */
const TRANSIENT_PRISMA = new Set(['P2002', 'P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2028', 'P2034', 'P2037']);
/** Node and driver network errors. */
const TRANSIENT_NETWORK = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ESOCKET',
  'ECONNECTION',
  'EDNS',
  'ETIMEOUT',
]);
function codesOf(error: unknown): string[] {
  const codes: string[] = [];
  for (let node: unknown = error, depth = 0; node && typeof node === 'object' && depth < 6; depth += 1) {
    const { code, cause, originalCode, meta } = node as { code?: unknown; cause?: unknown; originalCode?: unknown; meta?: { code?: unknown } };
    for (const candidate of [code, originalCode, meta?.code]) if (candidate !== undefined) codes.push(String(candidate));
    node = cause;
  }
  return codes;
}

function messagesOf(error: unknown): string {
  const parts: string[] = [];
  for (let node: unknown = error, depth = 0; node instanceof Error && depth < 6; depth += 1) {
    parts.push(`${node.name}: ${node.message}`);
    node = node.cause;
  }
  return parts.join(' / ');
}

/** Prisma's "raw query failed"; its meta.code is the database's SQLSTATE, or N/A when there was no answer. */
const RAW_QUERY_FAILED = 'P2010';
/** A SQLSTATE (five characters), not one of Prisma's own P1xxx/P2xxx codes. */
const isSqlState = (code: string): boolean => /^[0-9A-Z]{5}$/.test(code) && !/^P[1-9]\d{3}$/.test(code);

/** Errors whose code or SQLSTATE says the data or the code is at fault. */
const PERMANENT_SQLSTATE = /^(22|23|42|54|2200|44)/;

/**
 * Transient unless something says the data or the code is at fault: an error nobody recognises is
 * retried, because losing a command to an outage of an unforeseen kind is worse than retrying.
 */
export function isTransient(error: unknown): boolean {
  if (error instanceof ApplicationFailure) return !error.nonRetryable;
  // SMTP: 4xx is "try again later", 5xx a refusal (an unknown recipient, say) that waiting cannot change.
  const smtpReply = (error as { responseCode?: unknown } | null)?.responseCode;
  if (typeof smtpReply === 'number' && smtpReply >= 400) return smtpReply < 500;
  const codes = codesOf(error);
  // A raw query's failure (P2010) names the database's SQLSTATE in its message only: "Code: `57P01`".
  if (codes.includes(RAW_QUERY_FAILED)) codes.push(...[...messagesOf(error).matchAll(/Code: `([0-9A-Z]{5})`/g)].map((match) => match[1]!));
  if (codes.some((code) => TRANSIENT_PRISMA.has(code) || TRANSIENT_NETWORK.has(code) || TRANSIENT_SQLSTATE.test(code))) return true;
  // A raw query's failure (P2010) without any SQLSTATE got no answer from the database ("Server has
  // closed the connection", "Can't reach database server": a restart): transient.
  if (codes.includes(RAW_QUERY_FAILED) && !codes.some(isSqlState)) return true;
  if (codes.some((code) => PERMANENT_SQLSTATE.test(code) || /^P2/.test(code))) return false;
  return !(error instanceof TypeError || error instanceof RangeError || error instanceof ReferenceError || error instanceof SyntaxError);
}

export const PERMANENT_FAILURE = 'PERMANENT_FAILURE';

/**
 * The activity's logger (Temporal's: it names the workflow id, run id and activity type, and goes to the
 * process's logger), or a JSON line on stderr outside an activity.
 */
function logIncident(line: string, fields: Record<string, unknown>): void {
  try {
    activityLog.error(line, fields);
  } catch {
    process.stderr.write(`${JSON.stringify({ level: 'error', time: new Date().toISOString(), msg: line, ...fields })}\n`);
  }
}

/**
 * Wraps every activity: a permanent failure is logged once with an incident id (no payload, only the
 * error's name, code and message) and rethrown as a non-retryable failure that carries the incident
 * id, so the workflow can end the command; a transient one is rethrown as it is, to be retried.
 */
export function classifyingFailures<A extends Record<string, (...args: never[]) => Promise<unknown>>>(
  activities: A,
  log: (line: string, fields: Record<string, unknown>) => void = logIncident,
): A {
  const wrapped: Record<string, unknown> = {};
  for (const [name, activity] of Object.entries(activities)) {
    wrapped[name] = async (...args: never[]) => {
      try {
        return await activity(...args);
      } catch (error) {
        if (error instanceof ApplicationFailure || isTransient(error)) throw error;
        const incidentId = `inc-${Math.random().toString(16).slice(2, 10)}${Date.now().toString(16)}`;
        const codes = codesOf(error);
        log(`incident ${incidentId}: activity ${name} failed permanently: ${codes.length ? `[${codes.join(',')}] ` : ''}${messagesOf(error).slice(0, 500)}`, { incidentId });
        throw ApplicationFailure.create({
          type: PERMANENT_FAILURE,
          message: `activity ${name} failed permanently (incident ${incidentId})`,
          nonRetryable: true,
          details: [incidentId],
        });
      }
    };
  }
  return wrapped as A;
}
