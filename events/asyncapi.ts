import { z } from 'zod';
import { inboundCommands, type InboundType } from './inbound';
import { Limits } from './limits';
import {
  ACCESS_REQUEST_EVENT_NAMES,
  EVENT_SOURCE,
  OutboundTypes,
  outboundEvents,
  type AccessRequestEvent,
  type OutboundDraft,
} from './outbound';
import {
  accessRequestEventData,
  appAssignedData,
  appUnassignedData,
  appSelfServiceChangedData,
  businessCalendarChangedData,
  commandAcceptedData,
  commandRejectedData,
  deadLetterData,
  delegationChangedData,
  directoryGroupChangedData,
  directoryUserChangedData,
  personalAppAddedData,
  personalAppsMovedData,
  personalBookmarkAddedData,
  settingsChangedData,
  technicalContactEmailFailedData,
  technicalContactEmailSentData,
} from './outbound-schemas';
import { inboundTopics, TopicNames, type TopicName } from './topics';

/**
 * The AsyncAPI 3.0 document of the public contract, built from the contract itself: topics from
 * `topics.ts`, inbound types and their data from the zod schemas of `inbound.ts`, outbound types, topics
 * and keys from the builders of `outbound.ts` (called with example data), their data from
 * `outbound-schemas.ts`. JSON Schema comes from zod's own `z.toJSONSchema`. Pure: `npm run asyncapi`
 * writes it to `events/asyncapi.yaml`, and a unit test fails when that file is stale.
 */

/**
 * The contract's version. The major number is the `.vN` of the topic and type names (a breaking change
 * gets `.v2` names); raise the minor number with each additive change.
 */
export const CONTRACT_VERSION = '1.1.0';

type Json = Record<string, unknown>;

/**
 * JSON Schema (draft 7, the base of AsyncAPI's schema format) of what a producer may send: `io: 'input'`,
 * so a field with a default is optional, and an object that ignores unknown fields leaves them open (an
 * outbound event may gain fields; consumers ignore the ones they do not know).
 */
export function jsonSchemaOf(schema: z.ZodType): Json {
  const { $schema: _schema, ...rest } = z.toJSONSchema(schema, { target: 'draft-7', io: 'input', unrepresentable: 'throw' }) as Json;
  return rest;
}

// --- topics --------------------------------------------------------------------------------------

const topicDescriptions: Record<TopicName, string> = {
  userRequests:
    'End-user requests: org-managed apps, cancellations, personal apps and bookmarks, Technical Contact messages, moves to Okta Personal, delegations while away (set and cancel).',
  decisions: "Approvers' decisions on pending app requests.",
  adminCommands:
    'Admin commands: org settings, Technical Contact, per-app Self Service configuration, admin actions on requests, and previews (dry runs) of settings and per-app changes, answered in the `preview` of their accepted result.',
  directory: 'Directory sync (orgs, users, groups, catalog apps, org apps). Each command gets a result too.',
  commandResults: 'Exactly one result per inbound command (accepted or rejected), keyed by org.',
  settings: "Org settings and per-app Self Service configuration as changed, with before and after; users' delegations while away as set and cancelled.",
  technicalContactEmails: 'Whether the email of a Technical Contact message went out.',
  accessRequests: 'Every step of an access request (Okta System Log names), keyed by request so that its steps stay in order.',
  dashboard: "Changes to a user's dashboard: assigned apps, personal apps and bookmarks added, personal apps moved to Okta Personal.",
  deadLetters:
    'Records that are not valid commands (their bytes and headers, bounded and redacted, plus dlq-* headers), and CloudEvents for commands whose processing failed permanently (INTERNAL_ERROR).',
  directoryChanges: 'Internal: user status and group membership changes. Not part of the partner contract; may change without notice.',
};

const pascal = (name: string) => name.charAt(0).toUpperCase() + name.slice(1);

// --- CloudEvents over Kafka ----------------------------------------------------------------------

const ATTRIBUTE_NOTE = 'No control characters (C0, C1, DEL, U+2028/2029) and no lone surrogates.';

const attribute = (max: number, description: string): Json => ({ type: 'string', minLength: 1, maxLength: max, description: `${description} ${ATTRIBUTE_NOTE}` });

const otherHeaders: Json = {
  type: 'string',
  description: `Any other header: valid UTF-8, at most ${Limits.headerValueBytes} bytes, given once; header names at most ${Limits.headerNameChars} characters.`,
};

/** CloudEvents distributed-tracing extension (W3C Trace Context): optional, both ways. */
const TRACEPARENT_DOC =
  'Optional, CloudEvents distributed-tracing extension: a W3C traceparent (00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>). Inbound, the command is processed in this trace; a value that breaks the W3C format is ignored (never a refusal). Outbound, the trace of the work that wrote the event. Not part of the command\'s content: a retry under another trace is the same command.';
const TRACESTATE_DOC = 'Optional, with traceparent only: a W3C tracestate (at most 32 key=value members, 512 characters); an invalid one is ignored.';
const traceparent: Json = { type: 'string', pattern: '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-.*)?$', description: TRACEPARENT_DOC };
const tracestate: Json = { type: 'string', maxLength: 512, description: TRACESTATE_DOC };

/** Inbound binary mode: the envelope in `ce_*` headers, the data as the JSON body. */
function inboundBinaryHeaders(): Json {
  return {
    type: 'object',
    required: ['ce_specversion', 'ce_id', 'ce_source', 'ce_type'],
    maxProperties: Limits.headerCount,
    properties: {
      ce_specversion: { type: 'string', const: '1.0' },
      ce_id: attribute(Limits.ceId, 'Idempotency key with ce_source: use a UUID. No blank space at either end.'),
      ce_source: attribute(Limits.ceSource, 'The producer (a URI reference).'),
      ce_type: attribute(Limits.ceType, 'The command type.'),
      ce_time: { type: 'string', format: 'date-time', description: 'RFC 3339 with an offset.' },
      ce_subject: attribute(Limits.ceSubject, 'Optional subject.'),
      ce_traceparent: traceparent,
      ce_tracestate: tracestate,
      'content-type': {
        type: 'string',
        description: 'application/json, or absent. A value starting with application/cloudevents+json means structured mode.',
        not: { pattern: '^application/cloudevents\\+json' },
      },
    },
    additionalProperties: otherHeaders,
  };
}

/** Inbound structured mode: the whole CloudEvent in the body (`data` and `type` are each message's). */
function inboundStructured(): { headers: Json; payload: Json } {
  return {
    headers: {
      type: 'object',
      required: ['content-type'],
      maxProperties: Limits.headerCount,
      properties: { 'content-type': { type: 'string', pattern: '^application/cloudevents\\+json' } },
      additionalProperties: otherHeaders,
    },
    payload: {
      type: 'object',
      required: ['specversion', 'id', 'source', 'type', 'data'],
      properties: {
        specversion: { type: 'string', const: '1.0' },
        id: attribute(Limits.ceId, 'Idempotency key with source: use a UUID. No blank space at either end.'),
        source: attribute(Limits.ceSource, 'The producer (a URI reference).'),
        type: attribute(Limits.ceType, 'The command type.'),
        time: { type: 'string', format: 'date-time', description: 'RFC 3339 with an offset.' },
        subject: attribute(Limits.ceSubject, 'Optional subject.'),
        traceparent,
        tracestate,
        data: {},
      },
    },
  };
}

/** Outbound: binary mode, as `encodeCloudEvent` writes it. */
function outboundHeaders(): Json {
  return {
    type: 'object',
    required: ['ce_specversion', 'ce_id', 'ce_source', 'ce_type', 'ce_time', 'content-type'],
    properties: {
      ce_specversion: { type: 'string', const: '1.0' },
      ce_id: { type: 'string', description: 'Deterministic (see each message). Delivery is at least once: drop an id already seen.' },
      ce_source: { type: 'string', const: EVENT_SOURCE },
      ce_type: { type: 'string' },
      ce_time: { type: 'string', format: 'date-time' },
      ce_traceparent: traceparent,
      ce_tracestate: tracestate,
      'content-type': { type: 'string', const: 'application/json' },
    },
  };
}

/** Shared parts, in components/schemas; each message adds its own type (and data). */
const Shared = {
  inboundHeaders: 'CloudEventBinaryHeaders',
  structuredHeaders: 'CloudEventStructuredHeaders',
  structuredEnvelope: 'CloudEventStructuredEnvelope',
  outboundHeaders: 'OutboundCloudEventHeaders',
} as const;

/** The shared schema `base`, with `ce_type` (or `type`) pinned and, for an envelope, its `data`. */
const pinned = (base: string, properties: Json): Json => ({ allOf: [schemaRef(base), { properties }] });

const schemaRef = (schemaId: string) => ({ $ref: `#/components/schemas/${schemaId}` });

const kafkaKey = (description: string): Json => ({ kafka: { key: { type: 'string', description }, bindingVersion: '0.5.0' } });

const INBOUND_KEY =
  'Not read by the backend (it counts toward MAX_EVENT_BYTES and is kept in a dead-letter copy). Records of one partition are taken in order: key by orgId to keep an org\u2019s commands in order.';

const INBOUND_DATA_NOTE =
  `The JSON body is nested at most ${Limits.jsonDepth} levels deep, uses no __proto__, constructor or prototype key, and the record (key, value and headers) ` +
  `is at most MAX_EVENT_BYTES (default ${Limits.eventBytes} bytes). Ids and names refuse control characters; free text keeps only tab, line feed and carriage return. ` +
  'A record that breaks the envelope or these bounds is dead-lettered and, when its ce_id is usable, rejected.';

// --- outbound events -----------------------------------------------------------------------------

/** How each outbound type is documented. Keyed by every builder and every outbound type: a new one does not compile until documented. */
export interface OutboundDoc {
  title: string;
  /** Where the Kafka key comes from (the builder fixes it). */
  key: string;
  /** How the CloudEvent id is made. */
  id: string;
  data: z.ZodType;
  /**
   * Events made by the contract's builder with example data: they give each message's topic, type and
   * key, and the document's examples. Empty: a reserved type that is not emitted.
   */
  examples: OutboundDraft[];
  /** A message for several CloudEvents types at once, under this message id (the dead-letter copy has its command's type). */
  anyOf?: { messageId: string; types: readonly string[] };
  /** Reserved, not emitted: documented, in no operation. */
  reserved?: string;
}

const ORG = 'org-acme';
const SNAPSHOT = { allowOrgManagedApps: true, allowPersonalApps: true, allowTechnicalContactRequests: false, allowMoveToOktaPersonal: false, technicalContactUserId: 'u-carol' };
const CONFIG = {
  requestsEnabled: true,
  approvalRequired: true,
  noteForRequester: 'Ask your manager first.',
  approverSteps: [{ type: 'USER' as const, id: 'u-bob', timeout: { days: 7 }, reminder: { daysBefore: 2 } }],
  notifications: { onApprove: { requester: true }, onDeny: { requester: true, approvers: true } },
  fallbackApproverIds: ['u-carol'],
};
const ACCESS_REQUEST: AccessRequestEvent = { orgId: ORG, requestId: 'req-3f2a', appId: 'app-github', requesterId: 'u-alice', actorId: 'u-bob', step: 1, at: '2025-01-01T09:00:00.000Z' };
const RESULT_ID = '`<ce_id of the command>:result` (a command that reuses an id with other content: `<ce_id>#conflict-<digest>:result`).';
const EFFECT_ID = 'derived from the command or request that caused it.';

export const outboundDocs: Record<keyof typeof outboundEvents | keyof typeof OutboundTypes, OutboundDoc> = {
  commandAccepted: {
    title: 'Command accepted',
    key: 'orgId, else the command id.',
    id: RESULT_ID,
    data: commandAcceptedData,
    examples: [
      outboundEvents.commandAccepted({ commandId: '7d0c9a52-4b7e-4f0e-9a51-3c2f1e8b6d10', commandType: 'selfservice.app.requested.v1', orgId: ORG, requestId: 'req-3f2a', workflowId: 'app-request-req-3f2a' }),
      outboundEvents.commandAccepted({
        commandId: '3c1e5b7a-9d2f-4e8c-b6a1-0f4d2c8e7b95',
        commandType: 'selfservice.settings.preview-requested.v1',
        orgId: ORG,
        preview: {
          change: 'selfservice.settings.update-requested.v1',
          computedAgainstVersion: 4,
          wouldBeVersion: 5,
          noChange: false,
          changed: ['allowOrgManagedApps'],
          pendingReviewed: 1,
          wouldClose: [{ requestId: 'req-3f2a', appId: 'app-github', requesterId: 'u-alice', reason: 'the org no longer allows users to add org-managed app integrations' }],
          wouldCloseTotal: 1,
          wouldReroute: [],
          wouldRerouteTotal: 0,
          wouldTurnOff: [
            {
              flow: 'ORG_MANAGED_APP_REQUESTS',
              setting: 'allowOrgManagedApps',
              effect: 'users can no longer request org-managed apps: the 1 apps of the Available Apps list can no longer be requested (their configuration is kept) and pending requests close',
              appIds: ['app-github'],
              appIdsTotal: 1,
            },
          ],
          truncated: false,
          listLimit: 500,
        },
      }),
    ],
  },
  commandRejected: {
    title: 'Command rejected',
    key: 'orgId, else the command id.',
    id: RESULT_ID,
    data: commandRejectedData,
    examples: [
      outboundEvents.commandRejected({
        commandId: '0b6e7c1d-2f4a-4c8e-8d3b-5a9f1e2c7b40',
        commandType: 'selfservice.app.requested.v1',
        orgId: ORG,
        code: 'DUPLICATE_PENDING_REQUEST',
        message: 'You already have a pending request for this app.',
        existingRequestId: 'req-3f2a',
      }),
    ],
  },
  settingsChanged: {
    title: 'Org settings changed',
    key: 'orgId.',
    id: EFFECT_ID,
    data: settingsChangedData,
    examples: [outboundEvents.settingsChanged({ orgId: ORG, actorId: 'u-admin', version: 4, before: SNAPSHOT, after: { ...SNAPSHOT, allowTechnicalContactRequests: true }, changed: ['allowTechnicalContactRequests'] })],
  },
  technicalContactChanged: {
    title: 'Technical Contact changed (reserved)',
    key: 'orgId.',
    id: EFFECT_ID,
    data: settingsChangedData,
    examples: [],
    reserved: OutboundTypes.technicalContactChanged,
  },
  appSelfServiceChanged: {
    title: 'Per-app Self Service configuration changed',
    key: 'orgId.',
    id: EFFECT_ID,
    data: appSelfServiceChangedData,
    examples: [outboundEvents.appSelfServiceChanged({ orgId: ORG, actorId: 'u-admin', appId: 'app-github', version: 1, before: null, after: CONFIG })],
  },
  businessCalendarChanged: {
    title: 'Business calendar changed',
    key: 'orgId.',
    id: EFFECT_ID,
    data: businessCalendarChangedData,
    examples: [
      outboundEvents.businessCalendarChanged({
        orgId: ORG,
        actorId: 'u-admin',
        before: null,
        after: { timeZone: 'Europe/Berlin', workingDays: ['MON', 'TUE', 'WED', 'THU', 'FRI'], holidays: ['2026-12-25'] },
      }),
    ],
  },
  delegationChanged: {
    title: 'Delegation while away set or cancelled',
    key: 'orgId.',
    id: EFFECT_ID,
    data: delegationChangedData,
    examples: [
      outboundEvents.delegationChanged({
        orgId: ORG,
        userId: 'u-bob',
        delegationId: 'dlg-5e1c',
        delegateId: 'u-dave',
        start: '2025-07-01T00:00:00.000Z',
        end: '2025-07-15T00:00:00.000Z',
        reason: 'summer holiday',
        change: 'SET',
      }),
    ],
  },
  technicalContactEmailSent: {
    title: 'Technical Contact email sent',
    key: 'orgId.',
    id: EFFECT_ID,
    data: technicalContactEmailSentData,
    examples: [
      outboundEvents.technicalContactEmailSent({ orgId: ORG, requesterId: 'u-alice', contactEmail: 'carol@acme.example', technicalContactMessageId: 'tcm-91b2', messageId: '<91b2@acme.example>' }),
    ],
  },
  technicalContactEmailFailed: {
    title: 'Technical Contact email failed',
    key: 'orgId.',
    id: EFFECT_ID,
    data: technicalContactEmailFailedData,
    examples: [
      outboundEvents.technicalContactEmailFailed({ orgId: ORG, requesterId: 'u-alice', contactEmail: 'carol@acme.example', technicalContactMessageId: 'tcm-91b2', error: 'mailbox unavailable' }),
    ],
  },
  accessRequest: {
    title: 'Access request step',
    key: 'requestId (one request\u2019s steps stay in order).',
    id: '`<requestId>:<sequence>`.',
    data: accessRequestEventData,
    examples: ACCESS_REQUEST_EVENT_NAMES.map((name) => outboundEvents.accessRequest(name, ACCESS_REQUEST)),
  },
  appAssigned: {
    title: 'App assigned',
    key: "userId (the user whose dashboard it is).",
    id: EFFECT_ID,
    data: appAssignedData,
    examples: [outboundEvents.appAssigned({ orgId: ORG, userId: 'u-alice', appId: 'app-github', requestId: 'req-3f2a' })],
  },
  appUnassigned: {
    title: 'App unassigned (a time-bound grant ended)',
    key: 'userId (the user whose dashboard it is).',
    id: EFFECT_ID,
    data: appUnassignedData,
    examples: [outboundEvents.appUnassigned({ orgId: ORG, userId: 'u-alice', appId: 'app-github', requestId: 'req-3f2a', grantId: 'req-3f2a', reason: 'ACCESS_ENDED' })],
  },
  personalAppAdded: {
    title: 'Personal app added',
    key: 'orgId.',
    id: EFFECT_ID,
    data: personalAppAddedData,
    examples: [outboundEvents.personalAppAdded({ orgId: ORG, userId: 'u-alice', personalAppId: 'pa-5c1d', catalogAppId: 'cat-netflix', username: 'alice@example.com', credentialsSet: true })],
  },
  personalAppsMoved: {
    title: 'Personal apps moved to Okta Personal',
    key: 'orgId.',
    id: EFFECT_ID,
    data: personalAppsMovedData,
    examples: [
      outboundEvents.personalAppsMoved({
        orgId: ORG,
        userId: 'u-alice',
        results: [
          { personalAppId: 'pa-5c1d', outcome: 'MOVED' },
          { personalAppId: 'pa-7e2f', outcome: 'NOT_ELIGIBLE', reason: 'ORG_EMAIL_DOMAIN', detail: 'the username is an org address' },
        ],
        exported: [{ personalAppId: 'pa-5c1d', catalogAppId: 'cat-netflix', username: 'alice@example.com' }],
        removeFromDashboard: true,
      }),
    ],
  },
  personalBookmarkAdded: {
    title: 'Personal bookmark added',
    key: 'orgId.',
    id: EFFECT_ID,
    data: personalBookmarkAddedData,
    examples: [
      outboundEvents.personalBookmarkAdded({ orgId: ORG, userId: 'u-alice', bookmarkId: 'pb-8a41c2d9e0f3b5a6c7d8e9f0', name: 'Team wiki', url: 'https://wiki.example.org/team' }),
    ],
  },
  directoryUserChanged: {
    title: 'Directory user changed (internal)',
    key: 'orgId.',
    id: EFFECT_ID,
    data: directoryUserChangedData,
    examples: [outboundEvents.directoryUserChanged({ orgId: ORG, userId: 'u-bob', previousStatus: 'ACTIVE', status: 'DEACTIVATED' })],
  },
  directoryGroupChanged: {
    title: 'Directory group changed (internal)',
    key: 'orgId.',
    id: EFFECT_ID,
    data: directoryGroupChangedData,
    examples: [outboundEvents.directoryGroupChanged({ orgId: ORG, groupId: 'g-finance', addedMemberIds: ['u-dave'], removedMemberIds: ['u-bob'] })],
  },
  deadLetter: {
    title: 'Command failed permanently (dead-letter copy)',
    key: "the command's orgId, else its id.",
    id: '`<ce_id of the command>:dead-letter`.',
    data: deadLetterData,
    examples: [
      outboundEvents.deadLetter(
        { type: 'selfservice.app.requested.v1', orgId: ORG },
        { commandId: '7d0c9a52-4b7e-4f0e-9a51-3c2f1e8b6d10', source: 'urn:partner:portal', incidentId: 'inc-4f1a', error: 'INTERNAL_ERROR', data: { orgId: ORG, userId: 'u-alice', appId: 'app-github' } },
      ),
    ],
    anyOf: { messageId: 'dead-letter.command-failed', types: Object.keys(inboundCommands) },
  },
};

/** The raw dead-letter copy of a record that is not a valid command (not a CloudEvent the backend writes). */
export const DEAD_LETTER_RECORD_MESSAGE = 'dead-letter.invalid-record';

function deadLetterRecordMessage(): Json {
  const header = (description: string) => ({ type: 'string', description });
  return {
    name: DEAD_LETTER_RECORD_MESSAGE,
    title: 'Invalid record (dead-letter copy)',
    summary: 'A record that is not a valid command, as received: its bytes and headers, plus dlq-* headers naming the error and the origin.',
    description:
      'Not a CloudEvent of its own: the original record (not a CloudEvent, not JSON, unknown type, wrong topic, data that fails the schema, over a bound), ' +
      `its original headers cut to ${Limits.headerValueBytes} bytes each (${Limits.headerCount} at most), its key cut to ${Limits.headerValueBytes} bytes, its value ` +
      `cut so that the copy stays under ${Limits.deadLetterBytes} bytes. Fields named like secrets are removed from the value, and credentials written into URLs ` +
      '(userinfo, parameters named like secrets) are replaced by [redacted]. When its ce_id is usable it also ' +
      'gets a rejected result on the command-results topic. dlq-error never echoes the payload.',
    contentType: 'application/octet-stream',
    headers: {
      type: 'object',
      required: ['dlq-error', 'dlq-source-topic', 'dlq-source-partition', 'dlq-source-offset', 'dlq-failed-at'],
      properties: {
        'dlq-error': { ...header('Why the record was refused.'), maxLength: Limits.echoedText },
        'dlq-source-topic': header('The topic the record came from (with its namespace).'),
        'dlq-source-partition': header('Its partition, in decimal.'),
        'dlq-source-offset': header('Its offset, in decimal.'),
        'dlq-failed-at': { type: 'string', format: 'date-time' },
        'dlq-value-truncated': header('The original size of the value in bytes, when the value was cut.'),
        'dlq-redacted': header(
          'The names of the fields removed because they are named like secrets (password, token, ...), and of those whose URL credentials were hidden ("url (credentials in a URL)"), comma-separated.',
        ),
      },
      additionalProperties: { type: 'string', description: `An original header, cut to ${Limits.headerValueBytes} bytes.` },
    },
    payload: { description: 'The original value, secret-named fields removed and URL credentials hidden, possibly cut (see dlq-value-truncated).' },
    bindings: kafkaKey(`The original key, cut to ${Limits.headerValueBytes} bytes.`),
  };
}

// --- the document --------------------------------------------------------------------------------

interface ChannelMessages {
  topic: TopicName;
  messageIds: string[];
}

const messageRef = (messageId: string) => ({ $ref: `#/components/messages/${messageId}` });

/** Builds the AsyncAPI 3.0.0 document of the public contract. */
export function buildAsyncApiDocument(): Json {
  const messages: Record<string, Json> = {};
  const structured = inboundStructured();
  const schemas: Record<string, Json> = {
    [Shared.inboundHeaders]: inboundBinaryHeaders(),
    [Shared.structuredHeaders]: structured.headers,
    [Shared.structuredEnvelope]: structured.payload,
    [Shared.outboundHeaders]: outboundHeaders(),
  };
  /** The JSON Schema of a command's or an event's data, once in components/schemas. */
  const dataSchema = (schemaId: string, schema: z.ZodType) => {
    schemas[schemaId] = jsonSchemaOf(schema);
    return schemaRef(schemaId);
  };
  const byTopic = new Map<TopicName, string[]>(Object.keys(TopicNames).map((topic) => [topic as TopicName, []]));
  const place = (topic: TopicName, messageId: string, message: Json) => {
    if (messages[messageId]) throw new Error(`AsyncAPI: message ${messageId} is defined twice`);
    messages[messageId] = message;
    byTopic.get(topic)!.push(messageId);
  };

  // Inbound: binary mode and structured mode of every type.
  for (const [type, spec] of Object.entries(inboundCommands) as [InboundType, (typeof inboundCommands)[InboundType]][]) {
    const data = dataSchema(type, spec.data);
    const common = {
      name: type,
      title: type,
      description: INBOUND_DATA_NOTE,
      bindings: kafkaKey(INBOUND_KEY),
    };
    place(spec.topic, type, {
      ...common,
      summary: `${type} in CloudEvents binary mode: ce_* headers, the data as the JSON body.`,
      contentType: 'application/json',
      headers: pinned(Shared.inboundHeaders, { ce_type: { const: type } }),
      payload: data,
    });
    place(spec.topic, `structured.${type}`, {
      ...common,
      summary: `${type} in CloudEvents structured mode: the whole event as the JSON body.`,
      contentType: 'application/cloudevents+json',
      headers: schemaRef(Shared.structuredHeaders),
      payload: pinned(Shared.structuredEnvelope, { type: { const: type }, data }),
    });
  }

  // Outbound: one message per CloudEvents type the builders make.
  for (const [name, doc] of Object.entries(outboundDocs)) {
    const payload = dataSchema(pascal(name), doc.data);
    const base = { title: doc.title, contentType: 'application/json', payload, bindings: kafkaKey(doc.key) };
    if (doc.reserved) {
      messages[doc.reserved] = {
        ...base,
        name: doc.reserved,
        summary: 'Reserved, not emitted: a Technical Contact change is a selfservice.settings.changed.v1 whose `changed` is ["technicalContactUserId"].',
        headers: pinned(Shared.outboundHeaders, { ce_type: { const: doc.reserved } }),
        'x-reserved': true,
      };
      continue;
    }
    const types = new Map<string, OutboundDraft[]>();
    for (const example of doc.examples) types.set(example.type, [...(types.get(example.type) ?? []), example]);
    const groups = doc.anyOf
      ? [{ messageId: doc.anyOf.messageId, ceType: { enum: [...doc.anyOf.types] }, examples: doc.examples }]
      : [...types].map(([type, examples]) => ({ messageId: type, ceType: { const: type }, examples }));
    for (const group of groups) {
      const topics = new Set(group.examples.map((example) => example.topic));
      const [topic] = topics;
      if (topics.size !== 1 || !topic) throw new Error(`AsyncAPI: the examples of ${group.messageId} name ${topics.size} topics`);
      place(topic, group.messageId, {
        ...base,
        name: group.messageId,
        summary: `${doc.title}. Kafka key: ${doc.key} CloudEvent id: ${doc.id}`,
        headers: pinned(Shared.outboundHeaders, { ce_type: group.ceType }),
        examples: group.examples.map((example) => ({
          name: example.type.replace(/^selfservice\./, '').replace(/[^A-Za-z0-9]+/g, '-'),
          headers: { ce_specversion: '1.0', ce_id: '<deterministic id>', ce_source: EVENT_SOURCE, ce_type: example.type, ce_time: '2025-01-01T09:00:00.000Z', 'content-type': 'application/json' },
          payload: example.data,
        })),
      });
    }
  }
  place('deadLetters', DEAD_LETTER_RECORD_MESSAGE, deadLetterRecordMessage());

  const channels: Record<string, Json> = {};
  const operations: Record<string, Json> = {};
  const placed: ChannelMessages[] = [...byTopic].map(([topic, messageIds]) => ({ topic, messageIds }));
  for (const { topic, messageIds } of placed) {
    channels[topic] = {
      address: TopicNames[topic],
      title: TopicNames[topic],
      description: `${topicDescriptions[topic]} The address is the base name: a deployment prefixes it with KAFKA_TOPIC_NAMESPACE (default none).`,
      messages: Object.fromEntries(messageIds.map((messageId) => [messageId, messageRef(messageId)])),
    };
    const receive = inboundTopics.includes(topic);
    operations[`${receive ? 'receive' : 'send'}${pascal(topic)}`] = {
      action: receive ? 'receive' : 'send',
      channel: { $ref: `#/channels/${topic}` },
      summary: receive ? `The backend consumes ${TopicNames[topic]}.` : `The backend publishes ${TopicNames[topic]} (through the outbox relay${topic === 'deadLetters' ? ', and the ingress for invalid records' : ''}).`,
      messages: messageIds.map((messageId) => ({ $ref: `#/channels/${topic}/messages/${messageId}` })),
    };
  }

  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Self Service backend: Kafka contract',
      version: CONTRACT_VERSION,
      description: [
        'The public Kafka contract of the Self Service backend (product spec section 4, as extended in the README). Generated from the zod schemas of events/ by `npm run asyncapi`; do not edit by hand.',
        '',
        `Every event is a CloudEvent 1.0. Inbound commands may use binary mode (ce_* headers, JSON body) or structured mode (content-type application/cloudevents+json); both forms are listed. The backend emits binary mode, with ce_source ${EVENT_SOURCE}.`,
        '',
        'Channel addresses are the base topic names; a deployment may prefix every topic with KAFKA_TOPIC_NAMESPACE (default none).',
        '',
        'Idempotency: ce_source + ce_id. The same command any number of times has one effect and one result; an id reused with other content is rejected (COMMAND_ID_CONFLICT). Outbound ids are deterministic and delivery is at least once: drop an id already seen.',
        '',
        'JSON Schema cannot say everything the backend checks: ids, names and envelope attributes refuse control characters, free text keeps only tab and line breaks, domains are trimmed and lowercased before their pattern is checked, and business limits (comment length, approver steps, ...) get rejected results of their own.',
      ].join('\n'),
      license: { name: 'Apache-2.0' },
    },
    defaultContentType: 'application/json',
    channels,
    operations,
    components: { schemas, messages },
  };
}
