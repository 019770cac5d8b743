import { decodeCloudEvent, encodeCloudEvent } from '../../events/cloudevents';
import { parseRecord } from '../../events/parse-record';
import { topicsFor } from '../../events/topics';
import { formatTraceparent, isValidTracestate, parseTraceparent, spanContextOf, traceContextOf } from '../../events/trace-context';

const topics = topicsFor('');
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';
const VALID = `00-${TRACE}-${SPAN}-01`;

const orgData = { orgId: 'org-1', name: 'Acme', emailDomains: ['acme.example'] };
const orgHeaders = {
  ce_specversion: '1.0',
  ce_id: 'cmd-1',
  ce_source: 'urn:test',
  ce_type: 'selfservice.directory.org-upserted.v1',
  'content-type': 'application/json',
};

function record(headers: Record<string, string>, body: unknown) {
  return { topic: topics.directory, partition: 0, offset: '0', key: Buffer.from('org-1'), value: Buffer.from(JSON.stringify(body)), headers };
}

describe('W3C traceparent', () => {
  test('parses a valid value and formats it back', () => {
    expect(parseTraceparent(VALID)).toEqual({ traceId: TRACE, spanId: SPAN, traceFlags: 1 });
    expect(formatTraceparent({ traceId: TRACE, spanId: SPAN, traceFlags: 1 })).toBe(VALID);
    expect(formatTraceparent({ traceId: TRACE, spanId: SPAN, traceFlags: 0 })).toBe(`00-${TRACE}-${SPAN}-00`);
  });

  test.each([
    ['upper-case hex', VALID.toUpperCase()],
    ['a zero trace id', `00-${'0'.repeat(32)}-${SPAN}-01`],
    ['a zero span id', `00-${TRACE}-${'0'.repeat(16)}-01`],
    ['version ff', `ff-${TRACE}-${SPAN}-01`],
    ['version 00 with more fields', `${VALID}-extra`],
    ['a short trace id', `00-${TRACE.slice(1)}-${SPAN}-01`],
    ['no flags', `00-${TRACE}-${SPAN}`],
    ['blank space', ` ${VALID}`],
    ['not a string', 42],
    ['empty', ''],
  ])('refuses %s', (_, value) => {
    expect(parseTraceparent(value)).toBeNull();
    expect(traceContextOf({ traceparent: value })).toBeUndefined();
  });

  test('a later version keeps its first four fields', () => {
    expect(traceContextOf({ traceparent: `01-${TRACE}-${SPAN}-01-what-comes-later` })).toEqual({ traceparent: VALID });
  });

  test('tracestate is kept when valid, dropped otherwise, and ignored without a traceparent', () => {
    expect(isValidTracestate('rojo=00f067aa0ba902b7,congo=t61rcWkgMzE')).toBe(true);
    expect(isValidTracestate('tenant@vendor=value')).toBe(true);
    expect(isValidTracestate('no-equals-sign')).toBe(false);
    expect(isValidTracestate('a=1,a=2')).toBe(false);
    expect(isValidTracestate('UPPER=1')).toBe(false);
    expect(isValidTracestate(`a=${'x'.repeat(600)}`)).toBe(false);
    expect(isValidTracestate(Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(','))).toBe(false);
    expect(traceContextOf({ traceparent: VALID, tracestate: 'rojo=1' })).toEqual({ traceparent: VALID, tracestate: 'rojo=1' });
    expect(traceContextOf({ traceparent: VALID, tracestate: 'bad' })).toEqual({ traceparent: VALID });
    expect(traceContextOf({ tracestate: 'rojo=1' })).toBeUndefined();
  });

  test('names a remote span context', () => {
    const context = spanContextOf({ traceparent: VALID, tracestate: 'rojo=1' });
    expect(context).toMatchObject({ traceId: TRACE, spanId: SPAN, traceFlags: 1, isRemote: true });
    expect(context?.traceState?.get('rojo')).toBe('1');
  });
});

describe('the distributed-tracing extension on Kafka records', () => {
  test('binary mode: ce_traceparent and ce_tracestate, both ways', () => {
    const event = { specversion: '1.0' as const, id: 'e-1', source: 'urn:x', type: 't.v1', traceparent: VALID, tracestate: 'rojo=1', data: { a: 1 } };
    const encoded = encodeCloudEvent(event, 'k');
    expect(encoded.headers).toMatchObject({ ce_traceparent: VALID, ce_tracestate: 'rojo=1' });
    const decoded = decodeCloudEvent(encoded);
    expect(decoded.ok && decoded.event).toMatchObject({ traceparent: VALID, tracestate: 'rojo=1' });
  });

  test('an event without a trace context gets no header', () => {
    const encoded = encodeCloudEvent({ specversion: '1.0', id: 'e-1', source: 'urn:x', type: 't.v1', data: {} }, null);
    expect(encoded.headers).not.toHaveProperty('ce_traceparent');
    expect(encoded.headers).not.toHaveProperty('ce_tracestate');
  });

  test('structured mode: the traceparent attribute', () => {
    const parsed = parseRecord(
      { ...record({ 'content-type': 'application/cloudevents+json' }, { specversion: '1.0', id: 'cmd-2', source: 'urn:test', type: orgHeaders.ce_type, traceparent: VALID, data: orgData }) },
      topics,
    );
    expect(parsed).toMatchObject({ ok: true, trace: { traceparent: VALID } });
  });

  test('a command with a valid traceparent carries it; an invalid one is ignored, not refused', () => {
    expect(parseRecord(record({ ...orgHeaders, ce_traceparent: VALID }, orgData), topics)).toMatchObject({ ok: true, trace: { traceparent: VALID } });
    const invalid = parseRecord(record({ ...orgHeaders, ce_traceparent: 'garbage', ce_tracestate: 'rojo=1' }, orgData), topics);
    expect(invalid.ok).toBe(true);
    expect(invalid).not.toHaveProperty('trace');
  });

  test('the trace context is not content: the same command under another trace has the same fingerprint', () => {
    const one = parseRecord(record({ ...orgHeaders, ce_traceparent: VALID }, orgData), topics);
    const other = parseRecord(record({ ...orgHeaders, ce_traceparent: `00-${TRACE}-${'1'.repeat(16)}-00` }, orgData), topics);
    const none = parseRecord(record(orgHeaders, orgData), topics);
    expect(one.ok && other.ok && none.ok).toBe(true);
    if (one.ok && other.ok && none.ok) expect(new Set([one.fingerprint, other.fingerprint, none.fingerprint]).size).toBe(1);
  });
});
