import type { Consumer, Kafka } from 'kafkajs';
import { decodeCloudEvent, headersToStrings } from './cloudevents';
import type { DeadLetterSink, InboundRecord } from './dead-letters';
import { inboundCommands, isInboundType, type Command } from './inbound';
import { describeIssues } from './validation';
import { OutboundTypes, type OutboundEvent } from './outbound';
import type { EventPublisher } from './publisher';
import { inboundTopics, type Topics } from './topics';

/**
 * Kafka ingress: turns each inbound record into a validated command and hands it to the router.
 * A record that is not a valid command goes to the dead-letter topic (and, when it carries a
 * CloudEvent id, gets a rejected result); the consumer keeps going. A failure to hand over a valid
 * command (Temporal or the database unreachable) is thrown, so the offset is not committed and
 * Kafka redelivers: nothing accepted is lost.
 */

export interface CommandRouter {
  route(command: Command): Promise<void>;
}

export type ParsedRecord =
  | { ok: true; command: Command }
  | { ok: false; code: string; reason: string; commandId?: string; commandType?: string; orgId?: string };


export function parseRecord(record: InboundRecord, topics: Topics): ParsedRecord {
  const decoded = decodeCloudEvent({
    key: record.key?.toString('utf8') ?? null,
    value: record.value,
    headers: headersToStrings(record.headers as Record<string, unknown>),
  });
  if (!decoded.ok) {
    return { ok: false, code: 'MALFORMED_EVENT', reason: decoded.reason, commandId: decoded.id, commandType: decoded.type };
  }
  const { event } = decoded;
  const orgId =
    typeof event.data === 'object' && event.data !== null && typeof (event.data as { orgId?: unknown }).orgId === 'string'
      ? (event.data as { orgId: string }).orgId
      : undefined;
  const rejected = (code: string, reason: string): ParsedRecord => ({
    ok: false,
    code,
    reason,
    commandId: event.id,
    commandType: event.type,
    orgId,
  });
  if (!isInboundType(event.type)) {
    return rejected('UNKNOWN_COMMAND_TYPE', `type ${event.type} is not an inbound command of this contract`);
  }
  const spec = inboundCommands[event.type];
  if (topics[spec.topic] !== record.topic) {
    return rejected('WRONG_TOPIC', `type ${event.type} belongs on topic ${topics[spec.topic]}, not ${record.topic}`);
  }
  const data = spec.data.safeParse(event.data);
  if (!data.success) return rejected('INVALID_COMMAND', describeIssues(data.error.issues, 'data'));
  const command = {
    commandId: event.id,
    type: event.type,
    source: event.source,
    receivedAt: new Date().toISOString(),
    data: data.data,
  } as Command;
  return { ok: true, command };
}

export function rejectionEvent(rejection: Extract<ParsedRecord, { ok: false }>): OutboundEvent | null {
  if (!rejection.commandId) return null;
  return {
    id: `${rejection.commandId}:result`,
    topic: 'commandResults',
    type: OutboundTypes.commandRejected,
    key: rejection.orgId ?? rejection.commandId,
    time: new Date().toISOString(),
    data: {
      commandId: rejection.commandId,
      commandType: rejection.commandType ?? 'unknown',
      orgId: rejection.orgId,
      code: rejection.code,
      message: rejection.reason,
    },
  };
}

export interface IngressDependencies {
  topics: Topics;
  router: CommandRouter;
  publisher: EventPublisher;
  deadLetters: DeadLetterSink;
  log?: (message: string) => void;
}

export async function handleRecord(record: InboundRecord, deps: IngressDependencies): Promise<void> {
  const parsed = parseRecord(record, deps.topics);
  if (parsed.ok) {
    await deps.router.route(parsed.command);
    return;
  }
  deps.log?.(`dead-lettering ${record.topic}[${record.partition}]@${record.offset}: ${parsed.code} ${parsed.reason}`);
  await deps.deadLetters.send(record, `${parsed.code}: ${parsed.reason}`);
  const result = rejectionEvent(parsed);
  if (result) await deps.publisher.publish([result]);
}

export interface IngressOptions extends IngressDependencies {
  kafka: Kafka;
  groupId: string;
}

/** Starts consuming every inbound topic; records of one partition are handled one at a time, in order. */
export async function startIngress(options: IngressOptions): Promise<Consumer> {
  const consumer = options.kafka.consumer({ groupId: options.groupId, sessionTimeout: 30000, heartbeatInterval: 3000 });
  await consumer.connect();
  await consumer.subscribe({ topics: inboundTopics.map((name) => options.topics[name]), fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ topic, partition, message }) => {
      await handleRecord(
        { topic, partition, offset: message.offset, key: message.key, value: message.value, headers: message.headers ?? {} },
        options,
      );
    },
  });
  return consumer;
}
