import { randomUUID } from 'node:crypto';
import type { IHeaders, Producer } from 'kafkajs';
import { encodeCloudEvent } from '../../events/cloudevents';
import type { TopicName, Topics } from '../../events/topics';
import type { Announced, EventLog } from './event-log';

export interface SentCommand {
  id: string;
  type: string;
  /** The fault round (or `seed`) the command belongs to. */
  round: string;
  data: Record<string, unknown>;
  sentAt: number;
  /** Send attempts until Kafka acknowledged it (more than one while the broker was down). */
  attempts: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Sends commands as a client app would: CloudEvents in binary mode keyed by org, and when Kafka does not
 * acknowledge a send, the same command (same CloudEvent id) again until it does.
 */
export class CommandSender {
  readonly sent = new Map<string, SentCommand>();

  constructor(
    private readonly producer: Producer,
    private readonly topics: Topics,
    private readonly events: EventLog,
  ) {}

  /** `beforeSend` learns the command id before the first attempt, so a reaction to it can never be missed. */
  async send(round: string, topic: TopicName, type: string, data: Record<string, unknown>, beforeSend?: (id: string) => void): Promise<string> {
    const id = randomUUID();
    const command: SentCommand = { id, type, round, data, sentAt: Date.now(), attempts: 0 };
    this.sent.set(id, command);
    beforeSend?.(id);
    const deadline = Date.now() + 5 * 60_000;
    for (;;) {
      command.attempts += 1;
      const record = encodeCloudEvent(
        { specversion: '1.0', id, source: 'urn:chaos-suite', type, time: new Date().toISOString(), data },
        typeof data.orgId === 'string' ? data.orgId : null,
      );
      try {
        await this.producer.send({ topic: this.topics[topic], acks: -1, messages: [{ key: record.key, value: record.value, headers: record.headers as IHeaders }] });
        return id;
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`could not send ${type} ${id} for 5 minutes: ${(error as Error).message}`);
        await sleep(1000);
      }
    }
  }

  /** The result records (every copy) of one command. */
  resultsOf(commandId: string): Announced[] {
    return this.events.resultsOf(commandId);
  }

  async waitForResult(commandId: string, timeoutMs = 120_000): Promise<Announced> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const [result] = this.resultsOf(commandId);
      if (result) return result;
      if (Date.now() > deadline) {
        const command = this.sent.get(commandId);
        throw new Error(`no result for ${command?.type ?? 'command'} ${commandId} within ${timeoutMs / 1000} s`);
      }
      await sleep(100);
    }
  }

  /** Sends and requires an accepted result (seeding). */
  async accepted(round: string, topic: TopicName, type: string, data: Record<string, unknown>): Promise<void> {
    const id = await this.send(round, topic, type, data);
    const result = await this.waitForResult(id);
    if (result.type !== 'selfservice.command.accepted.v1') {
      throw new Error(`${type} was not accepted: ${String(result.data.code)} ${String(result.data.message)}`);
    }
  }
}
