import { randomUUID } from 'node:crypto';
import type { IHeaders } from 'kafkajs';
import { DeadLetterHeaders, type InboundRecord } from '../../events/dead-letters';
import { parseRecord } from '../../events/parse-record';
import { Limits } from '../../events/limits';
import { topicsFor, type TopicName, type Topics } from '../../events/topics';
import { startTestBackend, type TestBackend } from '../support/backend';
import { settledSnapshot, snapshotDb, snapshotDiff, type DbSnapshot } from '../support/hostile/db-snapshot';
import { headerValues, RawProbe, recordSize, type RawRecord } from '../support/hostile/raw-probe';
import { sendCommand } from '../support/kafka-probe';
import { uniqueId } from '../support/test-config';

/**
 * Hostile input (issue 8): records that no well-behaved producer sends, on all four inbound topics,
 * sent raw so that bytes and headers are exactly as written here. For each one:
 *
 * - it gets one bounded dead-letter copy (never over ~900 KiB, header values <= 1024 bytes, no secret,
 *   the original bytes unless cut and flagged), and a rejected result `<ce_id>:result` with the
 *   expected code when its ce_id is usable, else no result at all;
 * - nothing in the database changed (row counts of every state table, the org's own rows, its audit
 *   trail, outbox events other than results);
 * - a valid command on the same topic and partition then gets its accepted result within 10 seconds.
 *
 * The same table also runs through `parseRecord` alone, without the services.
 */

type InboundTopic = Extract<TopicName, 'userRequests' | 'decisions' | 'adminCommands' | 'directory'>;

/** What a case's record is built from: the seeded org, and per case a fresh ce_id and marker. */
interface Ctx {
  topics: Topics;
  orgId: string;
  domain: string;
  adminId: string;
  userId: string;
  approverId: string;
  requesterId: string;
  /** An org app whose requests wait for the approver. */
  appId: string;
  /** A catalog app the user has already added (the valid userRequests command adds it again). */
  catalogAppId: string;
  /** A catalog app nobody added: adding it would create a row. */
  freshCatalogAppId: string;
  /** For decisions: a request waiting for the approver (the valid decisions command denies it). */
  requestId: string;
  /** Fresh per case. */
  ceId: string;
  /** Fresh per case: put into payloads that must never be echoed. */
  marker: string;
}

interface Outgoing {
  key: Buffer | string | null;
  value: Buffer | string | null;
  headers: IHeaders;
}

type Outcome =
  /** Dead-lettered, and a rejected result `<ce_id>:result` with this code (its message naming `mentions`). */
  | { kind: 'rejected'; code: string; mentions?: string[] }
  /** Dead-lettered with this code; no usable ce_id, so no result at all. */
  | { kind: 'dead-letter-only'; code: string }
  /** Not hostile after all: processed normally. */
  | { kind: 'accepted' };

interface HostileCase {
  name: string;
  topic: InboundTopic;
  record(ctx: Ctx): Outgoing;
  outcome: Outcome;
  /** Strings that must appear nowhere in the dead-letter copy (value, key, headers) nor in the result. */
  secrets?(ctx: Ctx): string[];
  /** Strings that must not be echoed by the result or by the headers the dead-letter sink adds. */
  noEcho?(ctx: Ctx): string[];
  /** A check of the database other than "nothing changed". */
  db?(before: DbSnapshot, after: DbSnapshot, ctx: Ctx): void;
}

const T = {
  orgUpserted: 'selfservice.directory.org-upserted.v1',
  userUpserted: 'selfservice.directory.user-upserted.v1',
  groupUpserted: 'selfservice.directory.group-upserted.v1',
  catalogAppUpserted: 'selfservice.directory.catalog-app-upserted.v1',
  orgAppUpserted: 'selfservice.directory.org-app-upserted.v1',
  settings: 'selfservice.settings.update-requested.v1',
  configured: 'selfservice.app.self-service-configured.v1',
  adminAction: 'selfservice.app-request.admin-action.v1',
  requested: 'selfservice.app.requested.v1',
  personalAdd: 'selfservice.personal-app.add-requested.v1',
  message: 'selfservice.technical-contact.message-submitted.v1',
  move: 'selfservice.personal-app.move-requested.v1',
  decided: 'selfservice.app-request.decided.v1',
} as const;

const ACCEPTED = 'selfservice.command.accepted.v1';
const REJECTED = 'selfservice.command.rejected.v1';

// --- record builders -------------------------------------------------------------------------------

/** Binary-mode CloudEvent headers; `changes` replaces (a value) or drops (undefined) single headers. */
function ce(ctx: Ctx, type: string, changes: Record<string, IHeaders[string]> = {}): IHeaders {
  const headers: IHeaders = {
    ce_specversion: '1.0',
    ce_id: ctx.ceId,
    ce_source: 'urn:hostile-input',
    ce_type: type,
    ce_time: new Date().toISOString(),
    'content-type': 'application/json',
  };
  for (const [name, value] of Object.entries(changes)) {
    if (value === undefined) delete headers[name];
    else headers[name] = value;
  }
  return headers;
}

/** A binary-mode record of `type` whose body is `data` as JSON, keyed by the org. */
function json(ctx: Ctx, type: string, data: unknown, changes: Record<string, IHeaders[string]> = {}): Outgoing {
  return { key: ctx.orgId, value: Buffer.from(JSON.stringify(data)), headers: ce(ctx, type, changes) };
}

/** A binary-mode record with a body of exactly these bytes. */
function body(ctx: Ctx, type: string, value: Buffer | string | null, changes: Record<string, IHeaders[string]> = {}): Outgoing {
  return { key: ctx.orgId, value: typeof value === 'string' ? Buffer.from(value) : value, headers: ce(ctx, type, changes) };
}

/** A structured-mode record: the whole CloudEvent in the body. */
function structured(ctx: Ctx, event: string | Record<string, unknown>): Outgoing {
  const text = typeof event === 'string' ? event : JSON.stringify(event);
  return { key: ctx.orgId, value: Buffer.from(text), headers: { 'content-type': 'application/cloudevents+json; charset=utf-8' } };
}

/** JSON of `data` with raw members put first (for keys such as __proto__ that object literals cannot hold). */
function withRawMembers(data: Record<string, unknown>, members: string): string {
  return `{${members},${JSON.stringify(data).slice(1)}`;
}

/** The text of a JSON body with one string value replaced by raw bytes (invalid UTF-8 and the like). */
function withRawBytes(data: Record<string, unknown>, placeholder: string, bytes: number[]): Buffer {
  const [before, after] = JSON.stringify(data).split(placeholder) as [string, string];
  return Buffer.concat([Buffer.from(before), Buffer.from(bytes), Buffer.from(after)]);
}

function nested(depth: number, leaf: unknown): unknown {
  let value = leaf;
  for (let level = 0; level < depth; level += 1) value = { a: value };
  return value;
}

const big = (ctx: Ctx, chars: number): string => `ECHO-${ctx.marker}-`.padEnd(chars, 'x');

// --- valid data of each type, for the seeded org (a wrong acceptance would change the database) -----

const data = {
  org: (ctx: Ctx) => ({ orgId: `org-hostile-${ctx.marker}`, name: `Hostile ${ctx.marker}`, emailDomains: ['hostile.example'] }),
  user: (ctx: Ctx) => ({ orgId: ctx.orgId, userId: `user-${ctx.marker}`, email: `user-${ctx.marker}@${ctx.domain}`, status: 'ACTIVE', adminRoles: [] }),
  group: (ctx: Ctx) => ({ orgId: ctx.orgId, groupId: `group-${ctx.marker}`, name: `Group ${ctx.marker}`, memberIds: [ctx.userId] }),
  catalogApp: (ctx: Ctx) => ({ catalogAppId: `catalog-${ctx.marker}`, name: `Catalog ${ctx.marker}`, signOnModes: ['SWA'] }),
  orgApp: (ctx: Ctx) => ({ orgId: ctx.orgId, appId: `app-${ctx.marker}`, label: `App ${ctx.marker}`, signOnMode: 'SAML', status: 'ACTIVE' }),
  settings: (ctx: Ctx) => ({ orgId: ctx.orgId, actorId: ctx.adminId, changes: { allowMoveToOktaPersonal: true } }),
  configured: (ctx: Ctx, config: Record<string, unknown> = {}) => ({
    orgId: ctx.orgId,
    actorId: ctx.adminId,
    appId: ctx.appId,
    config: { requestsEnabled: true, approvalRequired: true, approverSteps: [{ type: 'USER', id: ctx.approverId, timeout: { days: 3 } }], ...config },
  }),
  adminAction: (ctx: Ctx) => ({ orgId: ctx.orgId, actorId: ctx.adminId, requestId: `request-${ctx.marker}`, action: 'DELETE' }),
  requested: (ctx: Ctx) => ({ orgId: ctx.orgId, userId: ctx.userId, appId: ctx.appId }),
  personalAdd: (ctx: Ctx) => ({ orgId: ctx.orgId, userId: ctx.userId, catalogAppId: ctx.freshCatalogAppId }),
  message: (ctx: Ctx) => ({ orgId: ctx.orgId, userId: ctx.userId, message: 'Please add the Expenses app' }),
  move: (ctx: Ctx) => ({ orgId: ctx.orgId, userId: ctx.userId, personalAppIds: [`personal-${ctx.marker}`] }),
  decided: (ctx: Ctx) => ({ orgId: ctx.orgId, requestId: ctx.requestId, approverId: ctx.approverId, decision: 'APPROVE' }),
};

const rejected = (code: string, ...mentions: string[]): Outcome => ({ kind: 'rejected', code, mentions });
const malformed = rejected('MALFORMED_EVENT');
const invalid = (...mentions: string[]): Outcome => rejected('INVALID_COMMAND', ...mentions);
const unaddressed: Outcome = { kind: 'dead-letter-only', code: 'MALFORMED_EVENT' };

// --- the cases ------------------------------------------------------------------------------------

const cases: HostileCase[] = [
  // Bodies that are not JSON, or not UTF-8, or nothing at all.
  { name: 'null value (tombstone) with valid headers', topic: 'userRequests', record: (ctx) => body(ctx, T.requested, null), outcome: malformed },
  { name: 'null key and null value', topic: 'decisions', record: (ctx) => ({ ...body(ctx, T.decided, null), key: null }), outcome: malformed },
  { name: 'empty value (zero bytes)', topic: 'adminCommands', record: (ctx) => body(ctx, T.settings, Buffer.alloc(0)), outcome: malformed },
  { name: 'truncated JSON', topic: 'directory', record: (ctx) => body(ctx, T.orgUpserted, '{"orgId": "org-x", "name": '), outcome: malformed },
  {
    name: 'JSON followed by trailing garbage',
    topic: 'userRequests',
    record: (ctx) => body(ctx, T.requested, `${JSON.stringify(data.requested(ctx))} {"x":1}`),
    outcome: malformed,
  },
  { name: 'NaN literal (JavaScript, not JSON)', topic: 'adminCommands', record: (ctx) => body(ctx, T.settings, `{"orgId":"${ctx.orgId}","actorId":"${ctx.adminId}","changes":{},"expectedVersion":NaN}`), outcome: malformed },
  {
    name: 'invalid UTF-8 byte (0xFF) inside a string',
    topic: 'directory',
    record: (ctx) => body(ctx, T.orgUpserted, withRawBytes({ ...data.org(ctx), name: 'Acme @@' }, '@@', [0xff, 0xfe])),
    outcome: malformed,
  },
  {
    name: 'overlong UTF-8 encoding (0xC0 0xAF for "/")',
    topic: 'userRequests',
    record: (ctx) => body(ctx, T.requested, withRawBytes({ ...data.requested(ctx), comment: 'see @@etc' }, '@@', [0xc0, 0xaf])),
    outcome: malformed,
  },
  {
    name: 'UTF-8-encoded surrogate (CESU-8 bytes 0xED 0xA0 0x80)',
    topic: 'decisions',
    record: (ctx) => body(ctx, T.decided, withRawBytes({ ...data.decided(ctx), comment: 'ok @@' }, '@@', [0xed, 0xa0, 0x80])),
    outcome: malformed,
  },

  // Missing, duplicated and malformed envelope headers.
  { name: 'no headers at all', topic: 'adminCommands', record: (ctx) => ({ key: ctx.orgId, value: JSON.stringify(data.settings(ctx)), headers: {} }), outcome: unaddressed },
  { name: 'missing ce_id', topic: 'directory', record: (ctx) => json(ctx, T.orgUpserted, data.org(ctx), { ce_id: undefined }), outcome: unaddressed },
  { name: 'missing ce_type', topic: 'userRequests', record: (ctx) => json(ctx, T.requested, data.requested(ctx), { ce_type: undefined }), outcome: malformed },
  { name: 'missing ce_source', topic: 'decisions', record: (ctx) => json(ctx, T.decided, data.decided(ctx), { ce_source: undefined }), outcome: malformed },
  { name: 'missing ce_specversion', topic: 'adminCommands', record: (ctx) => json(ctx, T.settings, data.settings(ctx), { ce_specversion: undefined }), outcome: malformed },
  { name: 'ce_specversion 0.3', topic: 'directory', record: (ctx) => json(ctx, T.userUpserted, data.user(ctx), { ce_specversion: '0.3' }), outcome: malformed },
  {
    name: 'ce_type given twice (two different types)',
    topic: 'userRequests',
    record: (ctx) => json(ctx, T.requested, data.requested(ctx), { ce_type: [T.requested, T.personalAdd] }),
    outcome: malformed,
  },
  { name: 'ce_specversion given twice (same value)', topic: 'directory', record: (ctx) => json(ctx, T.groupUpserted, data.group(ctx), { ce_specversion: ['1.0', '1.0'] }), outcome: malformed },
  { name: 'ce_source given twice', topic: 'decisions', record: (ctx) => json(ctx, T.decided, data.decided(ctx), { ce_source: ['urn:a', 'urn:b'] }), outcome: malformed },
  {
    name: 'ce_id given twice (two different ids: neither is usable)',
    topic: 'adminCommands',
    record: (ctx) => json(ctx, T.settings, data.settings(ctx), { ce_id: [ctx.ceId, `${ctx.ceId}-other`] }),
    outcome: unaddressed,
  },
  { name: `ce_id of ${Limits.ceId + 1} characters`, topic: 'userRequests', record: (ctx) => json(ctx, T.requested, data.requested(ctx), { ce_id: `${ctx.ceId}-`.padEnd(Limits.ceId + 1, 'i') }), outcome: unaddressed },
  { name: 'ce_id with a control character (BEL)', topic: 'adminCommands', record: (ctx) => json(ctx, T.settings, data.settings(ctx), { ce_id: `${ctx.ceId}\u0007` }), outcome: unaddressed },
  {
    name: 'ce_id that is not UTF-8',
    topic: 'decisions',
    record: (ctx) => json(ctx, T.decided, data.decided(ctx), { ce_id: Buffer.concat([Buffer.from(ctx.ceId), Buffer.from([0xff, 0xc3])]) }),
    outcome: unaddressed,
  },
  { name: 'ce_id with CR LF (header injection)', topic: 'userRequests', record: (ctx) => json(ctx, T.message, data.message(ctx), { ce_id: `${ctx.ceId}\r\nce_type: evil` }), outcome: unaddressed },
  { name: `ce_source of ${Limits.ceSource + 1} characters`, topic: 'directory', record: (ctx) => json(ctx, T.orgUpserted, data.org(ctx), { ce_source: `urn:${'s'.repeat(Limits.ceSource)}` }), outcome: malformed },
  { name: `ce_type of ${Limits.ceType + 1} characters`, topic: 'adminCommands', record: (ctx) => json(ctx, `selfservice.${'t'.repeat(Limits.ceType)}`, data.settings(ctx)), outcome: malformed },
  { name: `ce_subject of ${Limits.ceSubject + 1} characters`, topic: 'userRequests', record: (ctx) => json(ctx, T.requested, data.requested(ctx), { ce_subject: 'x'.repeat(Limits.ceSubject + 1) }), outcome: malformed },
  { name: 'ce_time that is not a timestamp', topic: 'decisions', record: (ctx) => json(ctx, T.decided, data.decided(ctx), { ce_time: 'yesterday at noon' }), outcome: malformed },
  { name: 'ce_source with a line break', topic: 'adminCommands', record: (ctx) => json(ctx, T.configured, data.configured(ctx), { ce_source: 'urn:admin\nX-Forged: 1' }), outcome: malformed },
  {
    name: `a header value of ${2 * Limits.headerValueBytes} bytes`,
    topic: 'directory',
    record: (ctx) => json(ctx, T.userUpserted, data.user(ctx), { traceparent: big(ctx, 2 * Limits.headerValueBytes) }),
    outcome: malformed,
  },
  {
    name: `${Limits.headerCount + 8} headers`,
    topic: 'userRequests',
    record: (ctx) => {
      const extra = Object.fromEntries(Array.from({ length: Limits.headerCount + 2 }, (_, index) => [`x-extra-${index}`, 'v']));
      return json(ctx, T.requested, data.requested(ctx), extra);
    },
    outcome: malformed,
  },
  { name: `a header name of ${Limits.headerNameChars + 36} characters`, topic: 'decisions', record: (ctx) => json(ctx, T.decided, data.decided(ctx), { [`x-${'n'.repeat(Limits.headerNameChars + 34)}`]: 'v' }), outcome: malformed },
  { name: 'ce_type that is not UTF-8', topic: 'adminCommands', record: (ctx) => json(ctx, T.settings, data.settings(ctx), { ce_type: Buffer.from([0x73, 0x65, 0xff, 0x80]) }), outcome: malformed },
  { name: 'a non-CloudEvent header that is not UTF-8', topic: 'directory', record: (ctx) => json(ctx, T.catalogAppUpserted, data.catalogApp(ctx), { 'x-note': Buffer.from([0xfe, 0xff, 0x00]) }), outcome: malformed },

  // Structured mode.
  {
    name: 'structured mode without data',
    topic: 'userRequests',
    record: (ctx) => structured(ctx, { specversion: '1.0', id: ctx.ceId, source: 'urn:hostile-input', type: T.requested }),
    outcome: malformed,
  },
  { name: 'structured mode whose body is a JSON array', topic: 'decisions', record: (ctx) => structured(ctx, JSON.stringify([{ specversion: '1.0', id: ctx.ceId, type: T.decided, data: data.decided(ctx) }])), outcome: unaddressed },
  {
    name: `structured mode with an id of ${Limits.ceId + 100} characters`,
    topic: 'adminCommands',
    record: (ctx) => structured(ctx, { specversion: '1.0', id: ctx.ceId.padEnd(Limits.ceId + 100, 'i'), source: 'urn:hostile-input', type: T.settings, data: data.settings(ctx) }),
    outcome: unaddressed,
  },
  {
    name: 'structured mode with specversion 2.0',
    topic: 'directory',
    record: (ctx) => structured(ctx, { specversion: '2.0', id: ctx.ceId, source: 'urn:hostile-input', type: T.orgUpserted, data: data.org(ctx) }),
    outcome: malformed,
  },
  {
    name: 'structured mode with a __proto__ key in data',
    topic: 'userRequests',
    record: (ctx) =>
      structured(ctx, `{"specversion":"1.0","id":"${ctx.ceId}","source":"urn:hostile-input","type":"${T.requested}","data":${withRawMembers(data.requested(ctx), '"__proto__":{"isAdmin":true}')}}`),
    outcome: malformed,
  },

  // Depth and prototype keys.
  { name: '__proto__ key at the top of data', topic: 'adminCommands', record: (ctx) => body(ctx, T.settings, withRawMembers(data.settings(ctx), '"__proto__":{"isAdmin":true}')), outcome: malformed },
  {
    name: '__proto__ key nested in changes',
    topic: 'adminCommands',
    record: (ctx) => body(ctx, T.settings, `{"orgId":"${ctx.orgId}","actorId":"${ctx.adminId}","changes":{"__proto__":{"polluted":true},"allowMoveToOktaPersonal":true}}`),
    outcome: malformed,
  },
  { name: 'constructor.prototype keys', topic: 'directory', record: (ctx) => body(ctx, T.orgUpserted, withRawMembers(data.org(ctx), '"constructor":{"prototype":{"polluted":true}}')), outcome: malformed },
  { name: 'prototype key', topic: 'userRequests', record: (ctx) => body(ctx, T.requested, withRawMembers(data.requested(ctx), '"prototype":{"polluted":true}')), outcome: malformed },
  { name: `data nested ${Limits.jsonDepth + 4} levels deep`, topic: 'decisions', record: (ctx) => json(ctx, T.decided, { ...data.decided(ctx), extra: nested(Limits.jsonDepth + 3, 'deep') }), outcome: malformed },

  // Wrong types, missing fields, and every kind of bound.
  { name: 'orgId is a number', topic: 'adminCommands', record: (ctx) => json(ctx, T.settings, { ...data.settings(ctx), orgId: 42 }), outcome: invalid('data.orgId') },
  { name: 'a setting given as the string "true"', topic: 'adminCommands', record: (ctx) => json(ctx, T.settings, { ...data.settings(ctx), changes: { allowPersonalApps: 'true' } }), outcome: invalid('data.changes.allowPersonalApps') },
  { name: 'required name missing', topic: 'directory', record: (ctx) => { const { name: _name, ...rest } = data.org(ctx); return json(ctx, T.orgUpserted, rest); }, outcome: invalid('data.name') },
  { name: `orgId of ${Limits.id + 1} characters`, topic: 'directory', record: (ctx) => json(ctx, T.orgUpserted, { ...data.org(ctx), orgId: `org-${ctx.marker}-`.padEnd(Limits.id + 1, 'o') }), outcome: invalid('data.orgId', String(Limits.id)) },
  { name: 'userId with a NUL character', topic: 'directory', record: (ctx) => json(ctx, T.userUpserted, { ...data.user(ctx), userId: `user-${ctx.marker}\u0000admin` }), outcome: invalid('data.userId') },
  { name: 'userId with a lone surrogate', topic: 'userRequests', record: (ctx) => json(ctx, T.requested, { ...data.requested(ctx), userId: `${ctx.userId}\ud800` }), outcome: invalid('data.userId') },
  { name: `org name of ${Limits.name + 1} characters`, topic: 'directory', record: (ctx) => json(ctx, T.orgUpserted, { ...data.org(ctx), name: 'n'.repeat(Limits.name + 1) }), outcome: invalid('data.name', String(Limits.name)) },
  { name: 'group name with an ESC control character', topic: 'directory', record: (ctx) => json(ctx, T.groupUpserted, { ...data.group(ctx), name: 'Finance \u001b[31mred' }), outcome: invalid('data.name') },
  {
    name: `email of more than ${Limits.email} characters`,
    topic: 'directory',
    record: (ctx) => json(ctx, T.userUpserted, { ...data.user(ctx), email: `${'a'.repeat(64)}@${`${'b'.repeat(60)}.`.repeat(4)}example` }),
    outcome: invalid('data.email', String(Limits.email)),
  },
  {
    name: 'a 400 KB comment on an app request',
    topic: 'userRequests',
    record: (ctx) => json(ctx, T.requested, { ...data.requested(ctx), comment: big(ctx, 400 * 1000) }),
    outcome: invalid('data.comment', String(Limits.comment)),
    noEcho: (ctx) => [`ECHO-${ctx.marker}`],
  },
  { name: 'comment with a BEL control character', topic: 'userRequests', record: (ctx) => json(ctx, T.requested, { ...data.requested(ctx), comment: 'please\u0007 add it' }), outcome: invalid('data.comment') },
  {
    name: 'a 100 KB decision comment',
    topic: 'decisions',
    record: (ctx) => json(ctx, T.decided, { ...data.decided(ctx), comment: big(ctx, 100 * 1000) }),
    outcome: invalid('data.comment', String(Limits.comment)),
    noEcho: (ctx) => [`ECHO-${ctx.marker}`],
  },
  { name: 'decision MAYBE', topic: 'decisions', record: (ctx) => json(ctx, T.decided, { ...data.decided(ctx), decision: 'MAYBE' }), outcome: invalid('data.decision') },
  {
    name: 'a 50 KB reason on an admin action',
    topic: 'adminCommands',
    record: (ctx) => json(ctx, T.adminAction, { ...data.adminAction(ctx), reason: big(ctx, 50 * 1000) }),
    outcome: invalid('data.reason', String(Limits.reason)),
    noEcho: (ctx) => [`ECHO-${ctx.marker}`],
  },
  {
    name: 'a 100 KB note for the requester',
    topic: 'adminCommands',
    record: (ctx) => json(ctx, T.configured, data.configured(ctx, { noteForRequester: big(ctx, 100 * 1000) })),
    outcome: invalid('data.config.noteForRequester', String(Limits.noteForRequester)),
    noEcho: (ctx) => [`ECHO-${ctx.marker}`],
  },
  {
    name: 'a 300 KB Technical Contact message',
    topic: 'userRequests',
    record: (ctx) => json(ctx, T.message, { ...data.message(ctx), message: big(ctx, 300 * 1000) }),
    outcome: invalid('data.message', String(Limits.technicalContactMessage)),
    noEcho: (ctx) => [`ECHO-${ctx.marker}`],
  },
  { name: 'a Technical Contact message with a NUL character', topic: 'userRequests', record: (ctx) => json(ctx, T.message, { ...data.message(ctx), message: 'hi\u0000there' }), outcome: invalid('data.message') },
  {
    name: `${Limits.emailDomains + 1} email domains`,
    topic: 'directory',
    record: (ctx) => json(ctx, T.orgUpserted, { ...data.org(ctx), emailDomains: Array.from({ length: Limits.emailDomains + 1 }, (_, index) => `d${index}.example`) }),
    outcome: invalid('data.emailDomains', String(Limits.emailDomains)),
  },
  {
    name: `${Limits.groupMembers + 1} group members`,
    topic: 'directory',
    record: (ctx) => json(ctx, T.groupUpserted, { ...data.group(ctx), memberIds: Array.from({ length: Limits.groupMembers + 1 }, (_, index) => `m${index}`) }),
    outcome: invalid('data.memberIds', String(Limits.groupMembers)),
  },
  { name: `${Limits.adminRoles + 1} admin roles`, topic: 'directory', record: (ctx) => json(ctx, T.userUpserted, { ...data.user(ctx), adminRoles: ['SUPER_ADMIN', 'APP_ADMIN', 'READ_ONLY_ADMIN', 'SUPER_ADMIN'] }), outcome: invalid('data.adminRoles', String(Limits.adminRoles)) },
  {
    name: `${Limits.signOnModes + 1} sign-on modes`,
    topic: 'directory',
    record: (ctx) => json(ctx, T.catalogAppUpserted, { ...data.catalogApp(ctx), signOnModes: ['SAML', 'OIDC', 'SWA', 'WS_FEDERATION', 'BOOKMARK', 'BASIC_AUTH', 'SECURE_PASSWORD_STORE', 'SWA'] }),
    outcome: invalid('data.signOnModes', String(Limits.signOnModes)),
  },
  {
    name: `${Limits.approverSteps + 1} approver steps`,
    topic: 'adminCommands',
    record: (ctx) => json(ctx, T.configured, data.configured(ctx, { approverSteps: Array.from({ length: Limits.approverSteps + 1 }, () => ({ type: 'USER', id: ctx.approverId, timeout: { days: 3 } })) })),
    outcome: invalid('data.config.approverSteps', String(Limits.approverSteps)),
  },
  {
    name: `${Limits.notificationOthers + 1} other notification recipients`,
    topic: 'adminCommands',
    record: (ctx) => json(ctx, T.configured, data.configured(ctx, { notifications: { onApprove: { others: Array.from({ length: Limits.notificationOthers + 1 }, (_, index) => `o${index}@${ctx.domain}`) } } })),
    outcome: invalid('data.config.notifications.onApprove.others', String(Limits.notificationOthers)),
  },
  {
    name: `${Limits.personalAppIds + 1} personal apps to move`,
    topic: 'userRequests',
    record: (ctx) => json(ctx, T.move, { ...data.move(ctx), personalAppIds: Array.from({ length: Limits.personalAppIds + 1 }, (_, index) => `p${index}`) }),
    outcome: invalid('data.personalAppIds', String(Limits.personalAppIds)),
  },
  { name: 'data is a JSON array', topic: 'decisions', record: (ctx) => json(ctx, T.decided, [data.decided(ctx)]), outcome: invalid('data') },
  { name: 'data is JSON null', topic: 'adminCommands', record: (ctx) => body(ctx, T.settings, 'null'), outcome: invalid('data') },
  { name: 'groupId with a line separator (U+2028)', topic: 'directory', record: (ctx) => json(ctx, T.groupUpserted, { ...data.group(ctx), groupId: `group\u2028${ctx.marker}` }), outcome: invalid('data.groupId') },
  { name: 'app label with a C1 control (U+0085)', topic: 'directory', record: (ctx) => json(ctx, T.orgAppUpserted, { ...data.orgApp(ctx), label: 'Expenses\u0085' }), outcome: invalid('data.label') },

  // Secrets in a personal-app command: refused, and kept out of the dead-letter copy.
  {
    name: 'personal app with a password',
    topic: 'userRequests',
    record: (ctx) => json(ctx, T.personalAdd, { ...data.personalAdd(ctx), username: 'jane', password: `pw-${ctx.marker}` }),
    outcome: invalid('password'),
    secrets: (ctx) => [`pw-${ctx.marker}`],
  },
  {
    name: 'personal app with a secret',
    topic: 'userRequests',
    record: (ctx) => json(ctx, T.personalAdd, { ...data.personalAdd(ctx), secret: `sec-${ctx.marker}` }),
    outcome: invalid('secret'),
    secrets: (ctx) => [`sec-${ctx.marker}`],
  },
  {
    name: 'personal app with a token',
    topic: 'userRequests',
    record: (ctx) => json(ctx, T.personalAdd, { ...data.personalAdd(ctx), token: `tok-${ctx.marker}` }),
    outcome: invalid('token'),
    secrets: (ctx) => [`tok-${ctx.marker}`],
  },

  // Types that are not commands, and commands on the wrong topic.
  { name: 'unknown command type', topic: 'userRequests', record: (ctx) => json(ctx, 'selfservice.app.grant-me-admin.v1', data.requested(ctx)), outcome: rejected('UNKNOWN_COMMAND_TYPE') },
  { name: 'type __proto__', topic: 'decisions', record: (ctx) => json(ctx, '__proto__', data.decided(ctx)), outcome: rejected('UNKNOWN_COMMAND_TYPE') },
  { name: 'type constructor', topic: 'adminCommands', record: (ctx) => json(ctx, 'constructor', data.settings(ctx)), outcome: rejected('UNKNOWN_COMMAND_TYPE') },
  { name: 'an app request on the decisions topic', topic: 'decisions', record: (ctx) => json(ctx, T.requested, data.requested(ctx)), outcome: rejected('WRONG_TOPIC') },
  { name: 'a decision on the user-requests topic', topic: 'userRequests', record: (ctx) => json(ctx, T.decided, data.decided(ctx)), outcome: rejected('WRONG_TOPIC') },
  { name: 'a settings change on the directory topic', topic: 'directory', record: (ctx) => json(ctx, T.settings, data.settings(ctx)), outcome: rejected('WRONG_TOPIC') },
  { name: 'an org sync on the admin-commands topic', topic: 'adminCommands', record: (ctx) => json(ctx, T.orgUpserted, data.org(ctx)), outcome: rejected('WRONG_TOPIC') },

  // Null key with a valid body: nothing hostile, processed normally.
  {
    name: 'null key with a valid body is processed normally',
    topic: 'directory',
    record: (ctx) => ({ ...json(ctx, T.orgUpserted, data.org(ctx)), key: null }),
    outcome: { kind: 'accepted' },
    db: (before, after) => {
      // The new org, and nothing of the seeded org's rows.
      expect(after.counts.orgsMarked).toBe((before.counts.orgsMarked ?? 0) + 1);
      const diff = snapshotDiff(before, after);
      for (const rows of ['org', 'settings', 'users', 'groups', 'apps', 'configs', 'requests', 'personalApps']) expect(diff).not.toHaveProperty([`rows.${rows}`]);
    },
  },

  // Oversize records, and inputs that are costly to refuse: last, so that one that wedges a partition
  // cannot hide the results of the others.
  {
    name: 'a record of 600 KB (over the maximum record size)',
    topic: 'userRequests',
    record: (ctx) => json(ctx, T.requested, { ...data.requested(ctx), comment: big(ctx, 600 * 1000) }),
    outcome: rejected('EVENT_TOO_LARGE'),
    noEcho: (ctx) => [`ECHO-${ctx.marker}`],
  },
  {
    name: 'a key of 600 KB with a valid body',
    topic: 'adminCommands',
    record: (ctx) => ({ ...json(ctx, T.settings, data.settings(ctx)), key: big(ctx, 600 * 1000) }),
    outcome: rejected('EVENT_TOO_LARGE'),
    noEcho: (ctx) => [`ECHO-${ctx.marker}`],
  },
  {
    name: '150 000 members of the wrong type (one issue each)',
    topic: 'directory',
    record: (ctx) => json(ctx, T.groupUpserted, { ...data.group(ctx), memberIds: Array.from({ length: 150_000 }, () => 0) }),
    outcome: invalid('data.memberIds'),
  },
  {
    name: 'a record of ~1 MB (dead-letter copy must be cut)',
    topic: 'decisions',
    record: (ctx) => json(ctx, T.decided, { ...data.decided(ctx), comment: big(ctx, 1_000_000) }),
    outcome: rejected('EVENT_TOO_LARGE'),
    noEcho: (ctx) => [`ECHO-${ctx.marker}`],
  },
  {
    name: 'data nested 100 000 levels deep',
    topic: 'directory',
    record: (ctx) => body(ctx, T.orgUpserted, `{"orgId":"${ctx.orgId}","name":${'['.repeat(100_000)}${']'.repeat(100_000)}}`),
    outcome: malformed,
  },
];

// --- checks shared by the pure and the integration runs -------------------------------------------

const asBuffer = (value: Buffer | string | null): Buffer | null => (value === null ? null : Buffer.isBuffer(value) ? value : Buffer.from(value));

function everywhere(record: RawRecord): string {
  const headers = headerValues(record.headers).map(({ name, value }) => `${name}=${value.toString('utf8')}`);
  return [record.key?.toString('utf8') ?? '', record.value?.toString('utf8') ?? '', ...headers].join('\n');
}

function unitCtx(): Ctx {
  return {
    topics: topicsFor('unit.'),
    orgId: 'org-unit',
    domain: 'unit.example',
    adminId: 'u-admin',
    userId: 'u-user',
    approverId: 'u-approver',
    requesterId: 'u-requester',
    appId: 'app-unit',
    catalogAppId: 'catalog-unit',
    freshCatalogAppId: 'catalog-fresh',
    requestId: 'request-unit',
    ceId: randomUUID(),
    marker: randomUUID().slice(0, 8),
  };
}

test('the suite covers at least 50 kinds of bad input, on all four inbound topics', () => {
  const hostile = cases.filter((c) => c.outcome.kind !== 'accepted');
  expect(hostile.length).toBeGreaterThanOrEqual(50);
  expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  const perTopic = (topic: InboundTopic) => hostile.filter((c) => c.topic === topic).length;
  for (const topic of ['userRequests', 'decisions', 'adminCommands', 'directory'] as const) expect(perTopic(topic)).toBeGreaterThanOrEqual(8);
});

describe('hostile input: parseRecord alone', () => {
  test.each(cases)('$topic: $name', (c) => {
    const ctx = unitCtx();
    const outgoing = c.record(ctx);
    const record: InboundRecord = {
      topic: ctx.topics[c.topic],
      partition: 0,
      offset: '0',
      key: asBuffer(outgoing.key),
      value: asBuffer(outgoing.value),
      headers: outgoing.headers,
    };
    const parsed = parseRecord(record, ctx.topics);
    if (c.outcome.kind === 'accepted') {
      expect(parsed).toMatchObject({ ok: true });
      return;
    }
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    const addressed = c.outcome.kind === 'rejected' ? ctx.ceId : undefined;
    expect({ code: parsed.code, commandId: parsed.commandId }).toEqual({ code: c.outcome.code, commandId: addressed });
    for (const mention of c.outcome.kind === 'rejected' ? (c.outcome.mentions ?? []) : []) expect(parsed.reason).toContain(mention);
    for (const secret of [...(c.secrets?.(ctx) ?? []), ...(c.noEcho?.(ctx) ?? [])]) expect(parsed.reason).not.toContain(secret);
  });
});

// --- through the running backend -----------------------------------------------------------------

describe('hostile input through Kafka, the ingress, Temporal and PostgreSQL', () => {
  let backend: TestBackend;
  let probe: RawProbe;
  let base: Omit<Ctx, 'ceId' | 'marker' | 'requestId'>;
  /** The partition of each inbound topic that records keyed by the seeded org go to. */
  const orgPartition = new Map<string, number>();
  let previousTopic: InboundTopic | undefined;

  const isResultOf = (commandId: string) => (record: RawRecord) =>
    record.topic === backend.topics.commandResults && record.text.ce_id === `${commandId}:result`;

  /** Sends a valid command and returns its result (which must be an acceptance) within `timeoutMs`. */
  async function accepted(topic: InboundTopic, type: string, body: Record<string, unknown>, timeoutMs: number): Promise<RawRecord> {
    const id = randomUUID();
    await sendCommand(backend.producer, backend.topics[topic], type, body, { id });
    const result = await probe.waitFor(isResultOf(id), `the result of ${type} ${id}`, timeoutMs);
    expect({ type: result.text.ce_type, code: result.data.code, message: result.data.message }).toEqual({ type: ACCEPTED, code: undefined, message: undefined });
    return result;
  }

  /** A request of the requester waiting for the approver (the one left pending by a failed case, if any). */
  async function pendingRequest(ctx: Ctx): Promise<string> {
    const id = randomUUID();
    await sendCommand(backend.producer, backend.topics.userRequests, T.requested, { orgId: ctx.orgId, userId: ctx.requesterId, appId: ctx.appId }, { id });
    const result = await probe.waitFor(isResultOf(id), `the result of the app request ${id}`, 30_000);
    let requestId = result.data.existingRequestId as string;
    if (result.data.code !== 'DUPLICATE_PENDING_REQUEST') {
      expect({ type: result.text.ce_type, code: result.data.code }).toEqual({ type: ACCEPTED, code: undefined });
      requestId = result.data.requestId as string;
    }
    // Wait until the request waits at its first step (its approver email follows; the snapshot settles it).
    const deadline = Date.now() + 15_000;
    while ((await backend.db.appRequest.findUnique({ where: { id: requestId } }))?.currentStep !== 1) {
      if (Date.now() > deadline) throw new Error(`request ${requestId} never reached its first step`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return requestId;
  }

  /** The valid command sent after each bad input, on the same topic and (keyed by the org) the same partition. */
  function validCommand(topic: InboundTopic, ctx: Ctx): { type: string; body: Record<string, unknown> } {
    switch (topic) {
      case 'directory':
        return { type: T.userUpserted, body: { orgId: ctx.orgId, userId: ctx.userId, email: `${ctx.userId}@${ctx.domain}`, displayName: 'user', status: 'ACTIVE', adminRoles: [] } };
      case 'adminCommands':
        return { type: T.settings, body: { orgId: ctx.orgId, actorId: ctx.adminId, changes: { allowOrgManagedApps: true } } };
      case 'userRequests':
        return { type: T.personalAdd, body: { orgId: ctx.orgId, userId: ctx.userId, catalogAppId: ctx.catalogAppId } };
      case 'decisions':
        return { type: T.decided, body: { orgId: ctx.orgId, requestId: ctx.requestId, approverId: ctx.approverId, decision: 'DENY' } };
    }
  }

  beforeAll(async () => {
    backend = await startTestBackend();
    probe = await RawProbe.start(backend.kafka, [backend.topics.commandResults, backend.topics.deadLetters]);
    const orgId = uniqueId('org');
    const domain = `${orgId}.example`;
    const [adminId, userId, approverId, requesterId] = ['admin', 'user', 'approver', 'requester'].map(uniqueId) as [string, string, string, string];
    const [catalogAppId, freshCatalogAppId, appId] = [uniqueId('catalog'), uniqueId('catalog'), uniqueId('app')];
    const seed = (topic: InboundTopic, type: string, body: Record<string, unknown>) => accepted(topic, type, body, 60_000);
    await seed('directory', T.orgUpserted, { orgId, name: `Hostile ${orgId}`, emailDomains: [domain], features: { PERSONAL_APP_MIGRATION: true } });
    for (const [id, roles] of [[adminId, ['SUPER_ADMIN']], [userId, []], [approverId, []], [requesterId, []]] as const) {
      const displayName = id === userId ? 'user' : id;
      await seed('directory', T.userUpserted, { orgId, userId: id, email: `${id}@${domain}`, displayName, status: 'ACTIVE', adminRoles: roles });
    }
    await seed('adminCommands', T.settings, { orgId, actorId: adminId, changes: { allowOrgManagedApps: true, allowPersonalApps: true } });
    for (const id of [catalogAppId, freshCatalogAppId]) await seed('directory', T.catalogAppUpserted, { catalogAppId: id, name: `Catalog ${id}`, signOnModes: ['SWA'] });
    await seed('userRequests', T.personalAdd, { orgId, userId, catalogAppId });
    await seed('directory', T.orgAppUpserted, { orgId, appId, label: `Expenses ${appId}`, signOnMode: 'SAML', status: 'ACTIVE' });
    await seed('adminCommands', T.configured, {
      orgId,
      actorId: adminId,
      appId,
      config: { requestsEnabled: true, approvalRequired: true, approverSteps: [{ type: 'USER', id: approverId, timeout: { days: 7 } }] },
    });
    base = { topics: backend.topics, orgId, domain, adminId, userId, approverId, requesterId, appId, catalogAppId, freshCatalogAppId };
  }, 300_000);

  afterAll(async () => {
    await probe?.stop();
    await backend?.stop();
  });

  test.each(cases)('$topic: $name', async (c) => {
    const ctx: Ctx = { ...base, requestId: `request-none-${randomUUID()}`, ceId: randomUUID(), marker: randomUUID().slice(0, 8) };
    if (c.topic === 'decisions') {
      // A request waiting for the approver, for the valid decision that follows the bad input.
      ctx.requestId = await pendingRequest(ctx);
    }
    const topic = backend.topics[c.topic];
    const outgoing = c.record(ctx);
    const sentValue = asBuffer(outgoing.value);
    const scope = { orgId: ctx.orgId, domain: ctx.domain, marker: ctx.marker, ceId: ctx.ceId };

    // Around a decision (emails, the request's next step) the database takes longer to settle.
    const slow = c.topic === 'decisions' || previousTopic === 'decisions';
    previousTopic = c.topic;
    const before = await settledSnapshot(backend.db, scope, slow ? 300 : 120);
    const from = probe.records.length;
    // kafkajs hashes keys in quadratic time (a 600 KB key takes minutes): a huge key is sent to the
    // org's partition directly, where the valid command that follows will go.
    const hugeKey = outgoing.key !== null && outgoing.key.length > 10_000;
    const [meta] = await backend.producer.send({
      topic,
      acks: -1,
      messages: [{ key: outgoing.key, value: sentValue, headers: outgoing.headers, ...(hugeKey ? { partition: orgPartition.get(topic) ?? 0 } : {}) }],
    });
    const partition = meta!.partition;
    const offset = meta!.baseOffset ?? meta!.offset;
    if (outgoing.key === ctx.orgId) orgPartition.set(topic, partition);
    const isCopy = (record: RawRecord) =>
      record.topic === backend.topics.deadLetters &&
      record.text[DeadLetterHeaders.sourceTopic] === topic &&
      record.text[DeadLetterHeaders.sourcePartition] === String(partition) &&
      record.text[DeadLetterHeaders.sourceOffset] === offset;

    // 1. What the backend made of it: a dead-letter copy and perhaps a rejected result, or an acceptance.
    let copy: RawRecord | undefined;
    let result: RawRecord | undefined;
    if (c.outcome.kind === 'accepted') {
      result = await probe.waitFor(isResultOf(ctx.ceId), 'the result of the valid record', 10_000);
      expect(result.text.ce_type).toBe(ACCEPTED);
    } else {
      copy = await probe.waitFor(isCopy, `the dead-letter copy of ${topic}[${partition}]@${offset}`, 10_000);
      // A missing result is reported by step 5, after the other checks have run.
      if (c.outcome.kind === 'rejected') result = await probe.waitFor(isResultOf(ctx.ceId), `the rejected result ${ctx.ceId}:result`, 10_000).catch(() => undefined);
    }

    // 2. Nothing in the database changed that should not have.
    const after = await snapshotDb(backend.db, scope);
    if (c.db) c.db(before, after, ctx);
    else expect(snapshotDiff(before, after)).toEqual({});
    if (c.outcome.kind !== 'accepted') {
      // The ledger may record the rejection, never an acceptance.
      await expect(backend.db.processedCommand.count({ where: { commandId: { startsWith: ctx.ceId }, outcome: 'ACCEPTED' } })).resolves.toBe(0);
    }

    // 3. A valid command on the same topic (and partition) is still served within 10 seconds.
    const valid = validCommand(c.topic, ctx);
    const validId = randomUUID();
    await sendCommand(backend.producer, topic, valid.type, valid.body, { id: validId });
    const validResult = await probe.waitFor(isResultOf(validId), `the result of the valid ${valid.type} after the bad input`, 10_000);
    expect({ type: validResult.text.ce_type, code: validResult.data.code }).toEqual({ type: ACCEPTED, code: undefined });

    // 4. The dead-letter copy: bounded, naming the problem and the origin, the original bytes unless cut.
    if (copy && c.outcome.kind !== 'accepted') {
      expect(recordSize(copy)).toBeLessThanOrEqual(Limits.deadLetterBytes);
      for (const { name, value } of headerValues(copy.headers)) {
        expect({ name, bytes: value.length <= Limits.headerValueBytes }).toEqual({ name, bytes: true });
      }
      expect(copy.text[DeadLetterHeaders.error]).toContain(c.outcome.code);
      for (const mention of c.outcome.kind === 'rejected' ? (c.outcome.mentions ?? []).slice(0, 1) : []) expect(copy.text[DeadLetterHeaders.error]).toContain(mention);
      expect(copy.text[DeadLetterHeaders.failedAt]).toMatch(/^\d{4}-\d\d-\d\dT/);
      for (const secret of c.secrets?.(ctx) ?? []) expect(everywhere(copy)).not.toContain(secret);
      const added = headerValues(copy.headers).filter(({ name }) => name.startsWith('dlq-'));
      for (const echo of c.noEcho?.(ctx) ?? []) expect(added.map(({ value }) => value.toString('utf8')).join('\n')).not.toContain(echo);

      const truncated = copy.text[DeadLetterHeaders.valueTruncated];
      if (sentValue === null) {
        expect(copy.value).toBeNull();
      } else if (c.secrets) {
        expect(copy.value?.length ?? 0).toBeGreaterThan(0);
      } else if (truncated !== undefined) {
        expect(Number(truncated)).toBe(sentValue.length);
        expect(copy.value?.length ?? 0).toBeLessThan(sentValue.length);
        expect(sentValue.subarray(0, copy.value?.length ?? 0).equals(copy.value ?? Buffer.alloc(0))).toBe(true);
      } else {
        expect(copy.value?.equals(sentValue)).toBe(true);
      }
      if (sentValue !== null && sentValue.length > Limits.deadLetterBytes) expect(truncated).toBe(String(sentValue.length));
      if (sentValue !== null && sentValue.length <= backend.config.MAX_EVENT_BYTES && !c.secrets) expect(truncated).toBeUndefined();
    }

    // 5. Exactly the expected results: one per addressed command, none for an unaddressed one.
    await new Promise((resolve) => setTimeout(resolve, 150));
    const results = probe.matching((record) => record.topic === backend.topics.commandResults && record !== validResult, from);
    expect(results.map((record) => record.text.ce_id)).toEqual(c.outcome.kind === 'dead-letter-only' ? [] : [`${ctx.ceId}:result`]);
    const copies = probe.matching(isCopy, from);
    expect(copies).toHaveLength(c.outcome.kind === 'accepted' ? 0 : 1);

    // 6. The rejected result: its id, code, a bounded message naming the field and the limit.
    const echoes = [...(c.secrets?.(ctx) ?? []), ...(c.noEcho?.(ctx) ?? [])];
    if (result && c.outcome.kind === 'rejected') {
      expect(result.text.ce_type).toBe(REJECTED);
      expect(result.data).toMatchObject({ commandId: ctx.ceId, code: c.outcome.code });
      const message = String(result.data.message ?? '');
      expect(message.length).toBeGreaterThan(0);
      expect(message.length).toBeLessThanOrEqual(1200);
      for (const mention of c.outcome.mentions ?? []) expect(message).toContain(mention);
      for (const echo of echoes) expect(everywhere(result)).not.toContain(echo);
    }
  });
});
