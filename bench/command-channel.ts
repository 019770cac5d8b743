import { randomUUID } from 'node:crypto';
import { Partitioners, type IHeaders, type Kafka, type Producer } from 'kafkajs';
import { encodeCloudEvent } from '../events/cloudevents';
import type { TopicName, Topics } from '../events/topics';
import { now } from './stats';

/** One command as a client sends it: a CloudEvent in binary mode on its inbound topic. */
export interface OutgoingCommand {
  topic: TopicName;
  type: string;
  data: Record<string, unknown>;
  /** The record key; the org by default, as the end-user app, admin console and directory send. */
  key?: string;
}

export interface SentCommand {
  commandId: string;
  /** performance.now() once the broker acknowledged the record. */
  sentAt: number;
}

/** Sends commands through Kafka as the backend's clients do, and notes when each left. */
export class CommandChannel {
  private constructor(
    private readonly producer: Producer,
    private readonly topics: Topics,
  ) {}

  static async open(kafka: Kafka, topics: Topics): Promise<CommandChannel> {
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    return new CommandChannel(producer, topics);
  }

  private record(command: OutgoingCommand, commandId: string) {
    const record = encodeCloudEvent(
      { specversion: '1.0', id: commandId, source: 'urn:bench', type: command.type, time: new Date().toISOString(), data: command.data },
      command.key ?? String(command.data.orgId),
    );
    return { key: record.key, value: record.value, headers: record.headers as IHeaders };
  }

  /** Sends one command; its time is taken just before the send, as a client would stamp it. */
  async send(command: OutgoingCommand): Promise<SentCommand> {
    const commandId = randomUUID();
    const sentAt = now();
    await this.producer.send({ topic: this.topics[command.topic], messages: [this.record(command, commandId)] });
    return { commandId, sentAt };
  }

  /** Sends many commands in batches of `batchSize` records per produce call, in order. */
  async sendMany(commands: readonly OutgoingCommand[], batchSize = 500): Promise<SentCommand[]> {
    const sent: SentCommand[] = [];
    for (let start = 0; start < commands.length; start += batchSize) {
      const batch = commands.slice(start, start + batchSize);
      const ids = batch.map(() => randomUUID());
      const sentAt = now();
      const byTopic = new Map<string, ReturnType<CommandChannel['record']>[]>();
      batch.forEach((command, index) => {
        const topic = this.topics[command.topic];
        byTopic.set(topic, [...(byTopic.get(topic) ?? []), this.record(command, ids[index]!)]);
      });
      await this.producer.sendBatch({ topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) });
      ids.forEach((commandId) => sent.push({ commandId, sentAt }));
    }
    return sent;
  }

  async close(): Promise<void> {
    await this.producer.disconnect();
  }
}
