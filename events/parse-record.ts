import { createHash } from 'node:crypto';
import { decodeCloudEvent, inboundHeaders } from './cloudevents';
import type { InboundRecord } from './dead-letters';
import { inboundCommands, isInboundType, type Command } from './inbound';
import { bounded, FORBIDDEN_IN_NAMES, Limits } from './limits';
import type { Topics } from './topics';
import type { TraceContext } from './trace-context';
import { describeIssues } from './validation';

/**
 * From a Kafka record to a validated command, or to the refusal that names what is wrong: headers,
 * size, CloudEvents envelope, type, topic and data, all bounded. A command's content fingerprint
 * (source, type, data) tells a repeat from a conflicting reuse of its id.
 */

export type ParsedRecord =
  | { ok: true; command: Command; fingerprint: string; trace?: TraceContext }
  | { ok: false; code: string; reason: string; commandId?: string; commandType?: string; source?: string; orgId?: string };

/** Canonical JSON (sorted keys), so the same content in another key order has the same fingerprint. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonical(item)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function fingerprintOf(parts: unknown[]): string {
  return createHash('sha256').update(canonical(parts)).digest('hex');
}

function recordBytes(record: InboundRecord): number {
  let size = (record.key?.length ?? 0) + (record.value?.length ?? 0);
  for (const [name, value] of Object.entries(record.headers)) {
    for (const single of Array.isArray(value) ? value : [value]) {
      size += name.length + (Buffer.isBuffer(single) ? single.length : String(single ?? '').length);
    }
  }
  return size;
}

/**
 * The id, type and source of a record whose headers were refused, read from those three headers alone
 * when each is given once and usable: the refusal can then still be answered.
 */
function addressOf(headers: Record<string, unknown>): { commandId?: string; commandType?: string; source?: string } {
  const single = (name: string, max: number): string | undefined => {
    const values = Object.entries(headers)
      .filter(([key]) => key.toLowerCase() === name)
      .flatMap(([, value]) => (Array.isArray(value) ? value : [value]))
      .filter((value) => value !== undefined && value !== null);
    if (values.length !== 1) return undefined;
    const bytes = Buffer.isBuffer(values[0]) ? values[0] : Buffer.from(String(values[0]));
    if (bytes.length > max * 4) return undefined;
    try {
      const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      return text.length > 0 && text.length <= max && text.trim() === text && !FORBIDDEN_IN_NAMES.test(text) ? text : undefined;
    } catch {
      return undefined;
    }
  };
  const commandId = single('ce_id', Limits.ceId);
  return commandId ? { commandId, commandType: single('ce_type', Limits.ceType), source: single('ce_source', Limits.ceSource) } : {};
}

function orgIdOf(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const orgId = (data as { orgId?: unknown }).orgId;
  return typeof orgId === 'string' && orgId.length <= Limits.id ? orgId : undefined;
}

export function parseRecord(record: InboundRecord, topics: Topics, maxEventBytes: number = Limits.eventBytes): ParsedRecord {
  const headers = inboundHeaders(record.headers as Record<string, unknown>);
  if (!headers.ok) return { ok: false, code: 'MALFORMED_EVENT', reason: headers.reason, ...addressOf(record.headers as Record<string, unknown>) };
  const size = recordBytes(record);
  if (size > maxEventBytes) {
    const decodedHeaders = decodeCloudEvent({ key: null, value: Buffer.from('null'), headers: headers.headers });
    const addressed = decodedHeaders.ok ? decodedHeaders.event : { id: (decodedHeaders as { id?: string }).id, type: (decodedHeaders as { type?: string }).type, source: undefined };
    return { ok: false, code: 'EVENT_TOO_LARGE', reason: `the record has ${size} bytes; at most ${maxEventBytes} are allowed`, commandId: addressed.id, commandType: addressed.type, source: addressed.source };
  }
  const decoded = decodeCloudEvent({ key: record.key?.toString('utf8') ?? null, value: record.value, headers: headers.headers });
  if (!decoded.ok) {
    return { ok: false, code: 'MALFORMED_EVENT', reason: decoded.reason, commandId: decoded.id, commandType: decoded.type };
  }
  const { event } = decoded;
  const orgId = orgIdOf(event.data);
  const rejected = (code: string, reason: string): ParsedRecord => ({ ok: false, code, reason, commandId: event.id, commandType: event.type, source: event.source, orgId });
  if (!isInboundType(event.type)) {
    return rejected('UNKNOWN_COMMAND_TYPE', `type ${event.type} is not an inbound command of this contract`);
  }
  const spec = inboundCommands[event.type];
  if (topics[spec.topic] !== record.topic) {
    return rejected('WRONG_TOPIC', `type ${event.type} belongs on topic ${topics[spec.topic]}, not ${bounded(record.topic, 255)}`);
  }
  const data = spec.data.safeParse(event.data);
  if (!data.success) return rejected('INVALID_COMMAND', describeIssues(data.error.issues.slice(0, 10), 'data'));
  const command = {
    commandId: event.id,
    type: event.type,
    source: event.source,
    receivedAt: new Date().toISOString(),
    data: data.data,
  } as Command;
  // The trace context is not content: a retry under another trace is the same command.
  const trace = event.traceparent ? { traceparent: event.traceparent, ...(event.tracestate ? { tracestate: event.tracestate } : {}) } : undefined;
  return { ok: true, command, fingerprint: fingerprintOf([event.source, event.type, event.data]), ...(trace ? { trace } : {}) };
}

