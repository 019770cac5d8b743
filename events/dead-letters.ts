import { Partitioners, type IHeaders, type Kafka, type Producer } from 'kafkajs';

/** An inbound Kafka record as consumed, with where it came from. */
export interface InboundRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: IHeaders;
}

export interface DeadLetterSink {
  send(record: InboundRecord, reason: string): Promise<void>;
}

export const DeadLetterHeaders = {
  error: 'dlq-error',
  sourceTopic: 'dlq-source-topic',
  sourcePartition: 'dlq-source-partition',
  sourceOffset: 'dlq-source-offset',
  failedAt: 'dlq-failed-at',
} as const;

/** Sends the original bytes and headers to the dead-letter topic, plus headers naming the error. */
export class KafkaDeadLetterSink implements DeadLetterSink {
  private constructor(
    private readonly producer: Producer,
    private readonly topic: string,
  ) {}

  static async connect(kafka: Kafka, topic: string): Promise<KafkaDeadLetterSink> {
    const producer = kafka.producer({ allowAutoTopicCreation: true, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    return new KafkaDeadLetterSink(producer, topic);
  }

  async send(record: InboundRecord, reason: string): Promise<void> {
    await this.producer.send({
      topic: this.topic,
      acks: -1,
      messages: [
        {
          key: record.key,
          value: record.value,
          headers: {
            ...record.headers,
            [DeadLetterHeaders.error]: reason,
            [DeadLetterHeaders.sourceTopic]: record.topic,
            [DeadLetterHeaders.sourcePartition]: String(record.partition),
            [DeadLetterHeaders.sourceOffset]: record.offset,
            [DeadLetterHeaders.failedAt]: new Date().toISOString(),
          },
        },
      ],
    });
  }

  async disconnect(): Promise<void> {
    await this.producer.disconnect();
  }
}
