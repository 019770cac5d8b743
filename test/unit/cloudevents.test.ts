import { decodeCloudEvent, encodeCloudEvent } from '../../events/cloudevents';
import { parseRecord } from '../../events/parse-record';
import { topicsFor } from '../../events/topics';

const topics = topicsFor('');

function binaryRecord(headers: Record<string, string>, body: unknown, topic = topics.directory) {
  return {
    topic,
    partition: 0,
    offset: '0',
    key: Buffer.from('org-1'),
    value: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
    headers,
  };
}

const orgData = { orgId: 'org-1', name: 'Acme', emailDomains: ['acme.example'] };
const orgHeaders = {
  ce_specversion: '1.0',
  ce_id: 'cmd-1',
  ce_source: 'urn:test',
  ce_type: 'selfservice.directory.org-upserted.v1',
  'content-type': 'application/json',
};

describe('CloudEvents over Kafka', () => {
  test('an event encoded by the backend decodes to the same event', () => {
    const event = { specversion: '1.0' as const, id: 'e-1', source: 'urn:x', type: 't.v1', time: '2026-11-29T10:00:00Z', data: { a: 1 } };
    const decoded = decodeCloudEvent(encodeCloudEvent(event, 'k'));
    expect(decoded).toEqual({ ok: true, event });
  });

  test('a structured-mode event is accepted', () => {
    const decoded = decodeCloudEvent({
      key: null,
      headers: { 'content-type': 'application/cloudevents+json; charset=utf-8' },
      value: Buffer.from(JSON.stringify({ specversion: '1.0', id: 's-1', source: 'urn:x', type: 't.v1', data: { b: 2 } })),
    });
    expect(decoded).toEqual({ ok: true, event: { specversion: '1.0', id: 's-1', source: 'urn:x', type: 't.v1', data: { b: 2 } } });
  });

  test('a binary-mode event without ce_id is rejected with a reason naming the id', () => {
    const { ce_id: _omitted, ...headers } = orgHeaders;
    const decoded = decodeCloudEvent({ key: null, headers, value: Buffer.from('{}') });
    expect(decoded.ok).toBe(false);
    expect(!decoded.ok && decoded.reason).toMatch(/ce_id: is required/);
  });

  test('a body that is not JSON is rejected and keeps the event id for the result', () => {
    const decoded = decodeCloudEvent({ key: null, headers: orgHeaders, value: Buffer.from('{not json') });
    expect(decoded).toMatchObject({ ok: false, id: 'cmd-1', reason: expect.stringMatching(/not valid JSON/) });
  });
});

describe('inbound command validation', () => {
  test('a valid directory command becomes a typed command', () => {
    const parsed = parseRecord(binaryRecord(orgHeaders, orgData), topics);
    expect(parsed).toMatchObject({
      ok: true,
      command: {
        commandId: 'cmd-1',
        type: 'selfservice.directory.org-upserted.v1',
        data: { orgId: 'org-1', name: 'Acme', emailDomains: ['acme.example'] },
      },
    });
  });

  test('invalid data is rejected with the field and what is wrong with it', () => {
    const parsed = parseRecord(binaryRecord(orgHeaders, { ...orgData, emailDomains: ['not a domain'] }), topics);
    expect(parsed).toMatchObject({ ok: false, code: 'INVALID_COMMAND', commandId: 'cmd-1' });
    expect(!parsed.ok && parsed.reason).toContain('data.emailDomains.0: must be a domain name');
  });

  test('an unknown type is rejected as such', () => {
    const parsed = parseRecord(binaryRecord({ ...orgHeaders, ce_type: 'selfservice.nope.v1' }, orgData), topics);
    expect(parsed).toMatchObject({ ok: false, code: 'UNKNOWN_COMMAND_TYPE' });
  });

  test('a command on the wrong topic is rejected and names the right one', () => {
    const parsed = parseRecord(binaryRecord(orgHeaders, orgData, topics.userRequests), topics);
    expect(parsed).toMatchObject({ ok: false, code: 'WRONG_TOPIC' });
    expect(!parsed.ok && parsed.reason).toContain(topics.directory);
  });

  test('a personal app command carrying a password is refused', () => {
    const headers = { ...orgHeaders, ce_type: 'selfservice.personal-app.add-requested.v1' };
    const data = { orgId: 'o', userId: 'u', catalogAppId: 'c', username: 'me@gmail.com', password: 'hunter2' };
    const parsed = parseRecord(binaryRecord(headers, data, topics.userRequests), topics);
    expect(parsed).toMatchObject({ ok: false, code: 'INVALID_COMMAND' });
    expect(!parsed.ok && parsed.reason).toMatch(/never a password/);
    expect(!parsed.ok && parsed.reason).not.toContain('hunter2');
  });
});
