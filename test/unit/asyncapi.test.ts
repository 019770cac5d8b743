// The AsyncAPI document of the public contract (events/asyncapi.yaml): generated from the zod schemas
// by `npm run asyncapi`, valid for the AsyncAPI parser, never stale, and covering every type.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DiagnosticSeverity, Parser, type AsyncAPIDocumentInterface } from '@asyncapi/parser';
import { parse } from 'yaml';
import { CONTRACT_VERSION, DEAD_LETTER_RECORD_MESSAGE, outboundDocs } from '../../events/asyncapi';
import { inboundCommands } from '../../events/inbound';
import { ACCESS_REQUEST_EVENT_NAMES, accessRequestEventType, OutboundTypes } from '../../events/outbound';
import { inboundTopics, TopicNames, type TopicName } from '../../events/topics';
import type { AuditName } from '../../rules/app-request';
import { ASYNCAPI_FILE, renderAsyncApiYaml } from '../../workers/asyncapi';

const committedFile = ASYNCAPI_FILE;
const committed = readFileSync(committedFile, 'utf8');
const relative = path.relative(path.resolve(__dirname, '..', '..'), committedFile);

// The access-request types the document lists are the audit names the rules publish, no more, no less.
const listedNames: readonly AuditName[] = ACCESS_REQUEST_EVENT_NAMES;
const everyNameListed: [Exclude<AuditName, (typeof ACCESS_REQUEST_EVENT_NAMES)[number]>] extends [never] ? true : false = true;

type Json = Record<string, unknown>;
const raw = parse(committed) as { channels: Record<string, Json>; components: { messages: Record<string, Json> } };

/** The CloudEvents types a message stands for: its pinned `ce_type` (binary) or `type` (structured). */
function typesOf(message: Json): string[] {
  const pins = ((message.headers as Json | undefined)?.allOf ?? (message.payload as Json | undefined)?.allOf ?? []) as Json[];
  return pins.flatMap((part) => {
    const properties = (part.properties ?? {}) as Record<string, { const?: string; enum?: string[] }>;
    const pin = properties.ce_type ?? properties.type;
    return pin ? (pin.enum ?? (pin.const ? [pin.const] : [])) : [];
  });
}

let document: AsyncAPIDocumentInterface | undefined;
let problems: string[] = [];

/** The parsed document; without one, the parser's test says why. */
function parsed(): AsyncAPIDocumentInterface {
  if (!document) throw new Error(`the AsyncAPI parser gave no document: ${problems.join('; ')}`);
  return document;
}

beforeAll(async () => {
  const parsed = await new Parser().parse(committed, { source: committedFile });
  document = parsed.document;
  problems = parsed.diagnostics
    .filter((diagnostic) => diagnostic.severity === DiagnosticSeverity.Error)
    .map((diagnostic) => `${diagnostic.code}: ${diagnostic.message} at ${diagnostic.path.join('/')}`);
});

describe('AsyncAPI document of the public contract', () => {
  test(`${relative} is what npm run asyncapi generates`, () => {
    const generated = renderAsyncApiYaml();
    if (generated === committed) return;
    const ours = generated.split('\n');
    const theirs = committed.split('\n');
    const line = ours.findIndex((text, index) => text !== theirs[index]);
    throw new Error(
      `${relative} is stale: run \`npm run asyncapi\` and commit the result.\n` +
        `First difference at line ${line + 1}:\n  committed: ${theirs[line] ?? '(end of file)'}\n  generated: ${ours[line] ?? '(end of file)'}`,
    );
  });

  test('the AsyncAPI parser accepts it without errors', () => {
    expect(problems).toEqual([]);
    expect(document).toBeDefined();
    expect(document!.version()).toBe('3.0.0');
    expect(document!.info().version()).toBe(CONTRACT_VERSION);
  });

  test('info.version follows the .vN of the topic and type names', () => {
    const names = [...Object.values(TopicNames), ...Object.keys(inboundCommands), ...Object.values(OutboundTypes)];
    const majors = new Set(names.map((name) => /\.v(\d+)$/.exec(name)?.[1]));
    expect([...majors]).toEqual([CONTRACT_VERSION.split('.')[0]]);
  });

  test('one channel per topic, at its base name, with the operation of the backend', () => {
    const operations = parsed().operations().all();
    for (const [topic, address] of Object.entries(TopicNames) as [TopicName, string][]) {
      const channel = parsed().channels().get(topic);
      expect(channel?.address()).toBe(address);
      const actions = operations.filter((operation) => operation.channels().all().some((of) => of.id() === topic)).map((operation) => operation.action());
      expect({ topic, actions }).toEqual({ topic, actions: [inboundTopics.includes(topic) ? 'receive' : 'send'] });
    }
  });

  /** The ids of the messages of the operations on `topic`. */
  const messagesOn = (topic: TopicName, action: 'send' | 'receive'): string[] =>
    parsed()
      .operations()
      .all()
      .filter((operation) => operation.action() === action && operation.channels().all().some((channel) => channel.id() === topic))
      .flatMap((operation) => operation.messages().all().map((message) => message.id()));

  /** The messages of the operations on `topic`, as CloudEvents types (binary and structured alike). */
  const typesOn = (topic: TopicName, action: 'send' | 'receive'): Set<string> =>
    new Set(messagesOn(topic, action).flatMap((id) => typesOf(raw.components.messages[id] ?? {})));

  test('every inbound type is received on its topic, in binary and structured mode', () => {
    for (const [type, spec] of Object.entries(inboundCommands)) {
      expect({ type, received: messagesOn(spec.topic, 'receive') }).toEqual({ type, received: expect.arrayContaining([type, `structured.${type}`]) });
      expect(raw.components.messages[type]?.name).toBe(type);
      expect(typesOf(raw.components.messages[type] ?? {})).toEqual([type]);
      expect(typesOf(raw.components.messages[`structured.${type}`] ?? {})).toEqual([type]);
    }
  });

  test('every outbound type is a message, sent on the topic its builder fixes (the reserved one in no operation)', () => {
    const sent = new Map((Object.keys(TopicNames) as TopicName[]).map((topic) => [topic, typesOn(topic, 'send')]));
    const reserved = Object.values(outboundDocs).flatMap((doc) => (doc.reserved ? [doc.reserved] : []));
    expect(reserved).toEqual([OutboundTypes.technicalContactChanged]);
    const everySent = new Set([...sent.values()].flatMap((types) => [...types]));
    for (const type of Object.values(OutboundTypes)) {
      expect({ type, message: raw.components.messages[type]?.name }).toEqual({ type, message: type });
      expect({ type, sent: everySent.has(type) }).toEqual({ type, sent: !reserved.includes(type) });
    }
    for (const name of listedNames) {
      expect(sent.get('accessRequests')?.has(accessRequestEventType(name))).toBe(true);
    }
    for (const doc of Object.values(outboundDocs)) {
      for (const example of doc.examples) {
        expect({ type: example.type, sent: sent.get(example.topic)?.has(example.type) }).toEqual({ type: example.type, sent: true });
      }
    }
    expect(everyNameListed).toBe(true);
  });

  test('the dead-letter topic carries invalid records and failed commands of every inbound type', () => {
    const channel = raw.channels.deadLetters as { messages: Record<string, unknown> };
    expect(Object.keys(channel.messages)).toEqual(expect.arrayContaining([DEAD_LETTER_RECORD_MESSAGE, 'dead-letter.command-failed']));
    expect(typesOn('deadLetters', 'send')).toEqual(new Set(Object.keys(inboundCommands)));
  });

  test("every example in the document is built by the contract's builder and fits its schema", () => {
    for (const [name, doc] of Object.entries(outboundDocs)) {
      for (const example of doc.examples) {
        const parsed = doc.data.safeParse(example.data);
        expect({ name, type: example.type, issues: parsed.error?.issues ?? [] }).toEqual({ name, type: example.type, issues: [] });
      }
    }
  });
});
