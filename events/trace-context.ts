import { createTraceState, isSpanContextValid, trace, TraceFlags, type Context, type SpanContext } from '@opentelemetry/api';

/**
 * W3C Trace Context in CloudEvents' distributed-tracing extension: the optional `traceparent` and
 * `tracestate` attributes (binary mode: the `ce_traceparent` and `ce_tracestate` headers; structured
 * mode: attributes of the envelope). Inbound, a value that breaks the W3C format is ignored, never a
 * reason to refuse a command: the command is processed in a trace of its own. A `tracestate` without a
 * valid `traceparent`, or one that breaks its own format, is ignored as well. Outbound events carry the
 * `traceparent` (and `tracestate`) of the work that wrote them.
 */
export interface TraceContext {
  traceparent: string;
  tracestate?: string;
}

/** `traceparent` version 00: version, trace id, parent (span) id, flags; lowercase hex only. */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);
/** W3C: at most 32 list members; 512 characters is the size every vendor must propagate. */
const TRACESTATE_MAX_CHARS = 512;
const TRACESTATE_MAX_MEMBERS = 32;
const TRACESTATE_KEY = /^(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})$/;
// Printable ASCII except ',' and '=', not ending in a space.
const TRACESTATE_VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

export interface ParsedTraceparent {
  traceId: string;
  spanId: string;
  traceFlags: number;
}

/** The parts of a W3C `traceparent`, or null when the value breaks the format (then it is ignored). */
export function parseTraceparent(value: unknown): ParsedTraceparent | null {
  if (typeof value !== 'string' || value.length > 256) return null;
  const match = TRACEPARENT.exec(value);
  if (!match) return null;
  const [, version, traceId, spanId, flags, rest] = match as unknown as [string, string, string, string, string, string | undefined];
  if (version === 'ff') return null; // forbidden version
  if (version === '00' && rest !== undefined) return null; // version 00 is exactly 55 characters
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return null;
  return { traceId, spanId, traceFlags: parseInt(flags, 16) & 0xff };
}

/** A `traceparent` (version 00) from its parts. */
export function formatTraceparent({ traceId, spanId, traceFlags }: ParsedTraceparent): string {
  return `00-${traceId}-${spanId}-${(traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/** True when a `tracestate` keeps the W3C list format (members `key=value`, at most 32, 512 characters). */
export function isValidTracestate(value: unknown): value is string {
  if (typeof value !== 'string' || value.length > TRACESTATE_MAX_CHARS) return false;
  const members = value.split(',').map((member) => member.trim()).filter((member) => member.length > 0);
  if (members.length === 0 || members.length > TRACESTATE_MAX_MEMBERS) return false;
  const keys = new Set<string>();
  for (const member of members) {
    const at = member.indexOf('=');
    if (at <= 0) return false;
    const key = member.slice(0, at);
    if (!TRACESTATE_KEY.test(key) || !TRACESTATE_VALUE.test(member.slice(at + 1)) || keys.has(key)) return false;
    keys.add(key);
  }
  return true;
}

/** The trace context of an event's attributes, validated; undefined when it has none or it is invalid. */
export function traceContextOf(attributes: { traceparent?: unknown; tracestate?: unknown }): TraceContext | undefined {
  const parsed = parseTraceparent(attributes.traceparent);
  if (!parsed) return undefined;
  const traceparent = formatTraceparent(parsed); // a later version's extra fields are dropped
  return isValidTracestate(attributes.tracestate) ? { traceparent, tracestate: attributes.tracestate } : { traceparent };
}

/** The remote span context a trace context names (for a child span of it). */
export function spanContextOf(context: TraceContext): SpanContext | undefined {
  const parsed = parseTraceparent(context.traceparent);
  if (!parsed) return undefined;
  return { ...parsed, isRemote: true, ...(context.tracestate ? { traceState: createTraceState(context.tracestate) } : {}) };
}

/** `context` with the remote parent that a trace context names, or `context` itself without one. */
export function withRemoteParent(context: Context, remote: TraceContext | undefined): Context {
  const spanContext = remote ? spanContextOf(remote) : undefined;
  return spanContext ? trace.setSpanContext(context, spanContext) : context;
}

/** The trace context of a span context, when it is valid. */
export function traceContextOfSpan(spanContext: SpanContext | undefined): TraceContext | undefined {
  if (!spanContext || !isSpanContextValid(spanContext)) return undefined;
  const traceparent = formatTraceparent({ traceId: spanContext.traceId, spanId: spanContext.spanId, traceFlags: spanContext.traceFlags ?? TraceFlags.NONE });
  const tracestate = spanContext.traceState?.serialize();
  return tracestate ? { traceparent, tracestate } : { traceparent };
}

/**
 * The `traceparent` of the active span (the activity's or the ingress command's), for the outbox rows
 * its work writes; null when there is none (tracing off: the no-op API has no active span).
 */
export function activeTraceparent(): string | null {
  return traceContextOfSpan(trace.getActiveSpan()?.spanContext())?.traceparent ?? null;
}
