import { z } from 'zod';
import { FORBIDDEN_IN_NAMES, Limits, PROTOTYPE_KEYS } from './limits';
import { traceContextOf } from './trace-context';
import { describeIssues } from './validation';

/**
 * CloudEvents 1.0 over Kafka. Producers may use binary mode (`ce_*` headers, JSON body) or structured
 * mode (`content-type: application/cloudevents+json`, the whole event in the body). The backend emits
 * binary mode.
 */
export interface CloudEvent<T = unknown> {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  time?: string;
  subject?: string;
  /** Distributed-tracing extension (W3C Trace Context); an invalid inbound value is dropped, not refused. */
  traceparent?: string;
  tracestate?: string;
  data: T;
}

export type KafkaHeaders = Record<string, string>;

export interface KafkaRecord {
  key: string | null;
  value: Buffer | null;
  headers: KafkaHeaders;
}

export type DecodeResult =
  | { ok: true; event: CloudEvent }
  | { ok: false; reason: string; id?: string; type?: string };

const STRUCTURED_CONTENT_TYPE = 'application/cloudevents+json';

const attribute = (name: string, max: number) =>
  z
    .string({ error: (issue) => (issue.input === undefined ? 'is required' : `${name} must be a string`) })
    .min(1, `${name} must be a non-empty string`)
    .max(max, `${name} must be at most ${max} characters`)
    .refine((value) => !FORBIDDEN_IN_NAMES.test(value), `${name} must not contain control characters`);

const envelopeSchema = z.object({
  specversion: z.literal('1.0', { error: 'specversion must be "1.0"' }),
  id: attribute('id', Limits.ceId).refine((value) => value.trim() === value, 'id must not start or end with blank space'),
  source: attribute('source', Limits.ceSource),
  type: attribute('type', Limits.ceType),
  time: z.iso.datetime({ offset: true, error: 'time must be an RFC 3339 timestamp' }).optional(),
  subject: attribute('subject', Limits.ceSubject).optional(),
});

/** The id and type of an event, when they are usable to address a rejection (bounded, no control characters). */
function usable(value: unknown, max: number): string | undefined {
  return typeof value === 'string' && value.length > 0 && value.length <= max && value.trim() === value && !FORBIDDEN_IN_NAMES.test(value)
    ? value
    : undefined;
}

/** Kafka header values arrive as Buffers (or arrays of them); the contract uses single UTF-8 strings. */
export function headersToStrings(headers: Record<string, unknown> | undefined): KafkaHeaders {
  const result: KafkaHeaders = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    const single = Array.isArray(value) ? value[0] : value;
    if (single === undefined || single === null) continue;
    result[name.toLowerCase()] = Buffer.isBuffer(single) ? single.toString('utf8') : String(single);
  }
  return result;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(bytes: Buffer): string | null {
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

/**
 * Inbound headers, checked: at most `Limits.headerCount`, names and values bounded, values valid
 * UTF-8, and no header given twice (a repeated `ce_id` could mean two different commands).
 */
export function inboundHeaders(headers: Record<string, unknown> | undefined): { ok: true; headers: KafkaHeaders } | { ok: false; reason: string } {
  const entries = Object.entries(headers ?? {});
  if (entries.length > Limits.headerCount) return { ok: false, reason: `the record has ${entries.length} headers; at most ${Limits.headerCount} are allowed` };
  const result: KafkaHeaders = {};
  for (const [rawName, value] of entries) {
    const name = rawName.toLowerCase();
    if (name.length > Limits.headerNameChars || FORBIDDEN_IN_NAMES.test(name)) {
      return { ok: false, reason: `a header name is longer than ${Limits.headerNameChars} characters or holds control characters` };
    }
    const values = (Array.isArray(value) ? value : [value]).filter((single) => single !== undefined && single !== null);
    if (values.length === 0) continue;
    if (values.length > 1 || name in result) return { ok: false, reason: `header ${name} is given more than once` };
    const bytes = Buffer.isBuffer(values[0]) ? values[0] : Buffer.from(String(values[0]));
    if (bytes.length > Limits.headerValueBytes) return { ok: false, reason: `header ${name} is longer than ${Limits.headerValueBytes} bytes` };
    const text = decodeUtf8(bytes);
    if (text === null) return { ok: false, reason: `header ${name} is not valid UTF-8` };
    result[name] = text;
  }
  return { ok: true, headers: result };
}

/** The first problem of a JSON value's shape that no schema should have to meet: depth and prototype keys. */
function shapeProblem(value: unknown, depth = 1): string | null {
  if (typeof value !== 'object' || value === null) return null;
  if (depth > Limits.jsonDepth) return `the body is nested deeper than ${Limits.jsonDepth} levels`;
  if (Array.isArray(value)) {
    for (const item of value) {
      const problem = shapeProblem(item, depth + 1);
      if (problem) return problem;
    }
    return null;
  }
  for (const [key, item] of Object.entries(value)) {
    if (PROTOTYPE_KEYS.has(key)) return `the body uses the reserved key "${key}"`;
    const problem = shapeProblem(item, depth + 1);
    if (problem) return problem;
  }
  return null;
}

function parseJson(value: Buffer | null): { ok: true; json: unknown } | { ok: false; reason: string; json?: unknown } {
  if (value === null || value.length === 0) return { ok: false, reason: 'the record has no body' };
  const text = decodeUtf8(value);
  if (text === null) return { ok: false, reason: 'the body is not valid UTF-8' };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'the body is not valid JSON' };
  }
  const problem = shapeProblem(json);
  return problem ? { ok: false, reason: problem, json } : { ok: true, json };
}

export function decodeCloudEvent(record: KafkaRecord): DecodeResult {
  const contentType = record.headers['content-type'] ?? '';
  const body = parseJson(record.value);

  if (contentType.startsWith(STRUCTURED_CONTENT_TYPE)) {
    if (!body.ok) {
      // Parsed but refused (too deep, a reserved key): its id may still address the refusal.
      const parsed = typeof body.json === 'object' && body.json !== null ? (body.json as Record<string, unknown>) : {};
      return { ok: false, reason: body.reason, id: usable(parsed.id, Limits.ceId), type: usable(parsed.type, Limits.ceType) };
    }
    const candidate = (typeof body.json === 'object' && body.json !== null && !Array.isArray(body.json) ? body.json : {}) as Record<string, unknown>;
    const envelope = envelopeSchema.safeParse(candidate);
    const id = usable(candidate.id, Limits.ceId);
    const type = usable(candidate.type, Limits.ceType);
    if (!envelope.success) return { ok: false, reason: `invalid CloudEvent: ${describeIssues(envelope.error.issues)}`, id, type };
    if (!('data' in candidate)) return { ok: false, reason: 'the CloudEvent has no data', id, type };
    return { ok: true, event: { ...envelope.data, specversion: '1.0', ...traceContextOf(candidate), data: candidate.data } };
  }

  const envelope = envelopeSchema.safeParse({
    specversion: record.headers.ce_specversion,
    id: record.headers.ce_id,
    source: record.headers.ce_source,
    type: record.headers.ce_type,
    time: record.headers.ce_time,
    subject: record.headers.ce_subject,
  });
  const id = usable(record.headers.ce_id, Limits.ceId);
  const type = usable(record.headers.ce_type, Limits.ceType);
  if (!envelope.success) {
    return { ok: false, reason: `invalid CloudEvent headers (binary mode): ${describeIssues(envelope.error.issues.map((issue) => ({ ...issue, path: issue.path.map((p) => `ce_${String(p)}`) })))}`, id, type };
  }
  if (!body.ok) return { ok: false, reason: body.reason, id, type };
  const trace = traceContextOf({ traceparent: record.headers.ce_traceparent, tracestate: record.headers.ce_tracestate });
  return { ok: true, event: { ...envelope.data, specversion: '1.0', ...trace, data: body.json } };
}

/** Binary-mode encoding, the form the backend emits. */
export function encodeCloudEvent(event: CloudEvent, key: string | null): KafkaRecord {
  const headers: KafkaHeaders = {
    ce_specversion: event.specversion,
    ce_id: event.id,
    ce_source: event.source,
    ce_type: event.type,
    'content-type': 'application/json',
  };
  if (event.time) headers.ce_time = event.time;
  if (event.subject) headers.ce_subject = event.subject;
  if (event.traceparent) headers.ce_traceparent = event.traceparent;
  if (event.traceparent && event.tracestate) headers.ce_tracestate = event.tracestate;
  return { key, value: Buffer.from(JSON.stringify(event.data)), headers };
}
