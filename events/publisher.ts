import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import { encodeCloudEvent } from './cloudevents';
import { EVENT_SOURCE, type OutboundEvent } from './outbound';
import type { Topics } from './topics';

/** Sends outbound events to Kafka in CloudEvents binary mode. */
export interface EventPublisher {
  publish(events: readonly OutboundEvent[]): Promise<void>;
}

export class KafkaEventPublisher implements EventPublisher {
  private constructor(
    private readonly producer: Producer,
    private readonly topics: Topics,
  ) {}

  static async connect(kafka: Kafka, topics: Topics): Promise<KafkaEventPublisher> {
    // Sends are at least once; every event carries a deterministic CloudEvent id, so consumers drop copies.
    const producer = kafka.producer({ allowAutoTopicCreation: true, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    return new KafkaEventPublisher(producer, topics);
  }

  async publish(events: readonly OutboundEvent[]): Promise<void> {
    const byTopic = new Map<string, ReturnType<typeof encodeCloudEvent>[]>();
    for (const event of events) {
      const record = encodeCloudEvent(
        { specversion: '1.0', id: event.id, source: EVENT_SOURCE, type: event.type, time: event.time, traceparent: event.traceparent, tracestate: event.tracestate, data: event.data },
        event.key,
      );
      const topic = this.topics[event.topic];
      byTopic.set(topic, [...(byTopic.get(topic) ?? []), record]);
    }
    if (byTopic.size === 0) return;
    await this.producer.sendBatch({
      acks: -1,
      topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
    });
  }

  async disconnect(): Promise<void> {
    await this.producer.disconnect();
  }
}
