import { z } from 'zod';
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

const envelopeSchema = z.object({
  specversion: z.literal('1.0', { error: 'specversion must be "1.0"' }),
  id: z.string().trim().min(1, 'id must be a non-empty string').max(200, 'id must be at most 200 characters'),
  source: z.string().min(1, 'source must be a non-empty string'),
  type: z.string().min(1, 'type must be a non-empty string'),
  time: z.iso.datetime({ offset: true, error: 'time must be an RFC 3339 timestamp' }).optional(),
  subject: z.string().optional(),
});

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

function parseJson(value: Buffer | null): { ok: true; json: unknown } | { ok: false; reason: string } {
  if (value === null || value.length === 0) return { ok: false, reason: 'the record has no body' };
  try {
    return { ok: true, json: JSON.parse(value.toString('utf8')) };
  } catch (error) {
    return { ok: false, reason: `the body is not valid JSON (${(error as Error).message})` };
  }
}


export function decodeCloudEvent(record: KafkaRecord): DecodeResult {
  const contentType = record.headers['content-type'] ?? '';
  const body = parseJson(record.value);

  if (contentType.startsWith(STRUCTURED_CONTENT_TYPE)) {
    if (!body.ok) return { ok: false, reason: body.reason };
    const candidate = (typeof body.json === 'object' && body.json !== null ? body.json : {}) as Record<string, unknown>;
    const envelope = envelopeSchema.safeParse(candidate);
    const id = typeof candidate.id === 'string' ? candidate.id : undefined;
    const type = typeof candidate.type === 'string' ? candidate.type : undefined;
    if (!envelope.success) return { ok: false, reason: `invalid CloudEvent: ${describeIssues(envelope.error.issues)}`, id, type };
    if (!('data' in candidate)) return { ok: false, reason: 'the CloudEvent has no data', id, type };
    return { ok: true, event: { ...envelope.data, specversion: '1.0', data: candidate.data } };
  }

  const envelope = envelopeSchema.safeParse({
    specversion: record.headers.ce_specversion,
    id: record.headers.ce_id,
    source: record.headers.ce_source,
    type: record.headers.ce_type,
    time: record.headers.ce_time,
    subject: record.headers.ce_subject,
  });
  const id = record.headers.ce_id;
  const type = record.headers.ce_type;
  if (!envelope.success) {
    return { ok: false, reason: `invalid CloudEvent headers (binary mode): ${describeIssues(envelope.error.issues.map((issue) => ({ ...issue, path: issue.path.map((p) => `ce_${String(p)}`) })))}`, id, type };
  }
  if (!body.ok) return { ok: false, reason: body.reason, id, type };
  return { ok: true, event: { ...envelope.data, specversion: '1.0', data: body.json } };
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
  return { key, value: Buffer.from(JSON.stringify(event.data)), headers };
}
