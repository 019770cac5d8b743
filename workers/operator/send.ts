import { randomUUID } from 'node:crypto';
import { Partitioners } from 'kafkajs';
import { encodeCloudEvent } from '../../events/cloudevents';
import { inboundCommands, isInboundType } from '../../events/inbound';
import { createKafka, verifyKafkaAccess } from '../../events/kafka';
import { topicsFor } from '../../events/topics';
import { loadConfig } from '../config';
import { kafkaSettingsFrom } from '../kafka-settings';
import { helpText, parseArgs, positionals, UsageError, type CliCommand, type CommandSpec } from './args';

const spec: CommandSpec = {
  name: 'send',
  args: "<type> '<json data>'",
  summary: 'publish one command to its Kafka topic and print its result',
  details: [
    'Publishes the command as a client app would (CloudEvents binary mode, a new UUID as its id, source',
    'urn:selfservice-cli) and waits up to 60 s for its result on the results topic: the ingress, the worker and',
    'the outbox relay must be running (npm start). Exit code 1 when the command is rejected.',
    `types: ${Object.keys(inboundCommands).join(', ')}`,
  ],
  examples: [`send selfservice.app.requested.v1 '{"orgId":"org-acme","userId":"u-alice","appId":"app-expenses"}'`],
};

/** Publishes one command as a client app would, then waits for its result on the results topic. */
async function run(args: readonly string[]): Promise<boolean> {
  const parsed = parseArgs(spec, args);
  if (parsed.help) {
    console.log(helpText(spec));
    return true;
  }
  if (parsed.positionals.length < 2) throw new UsageError('send needs a type and the JSON data', helpText(spec));
  const [type, json] = positionals(spec, parsed, ['a type', 'the JSON data']) as [string, string];
  if (!isInboundType(type)) throw new UsageError(`${type} is not an inbound command type`, helpText(spec));
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch (error) {
    throw new UsageError(`the data is not JSON: ${(error as Error).message}`, helpText(spec));
  }
  const config = loadConfig();
  const settings = { ...kafkaSettingsFrom(config), clientId: `${config.KAFKA_CLIENT_ID}-cli` };
  await verifyKafkaAccess(settings); // refused TLS or credentials: a clear message at once
  const kafka = createKafka(settings);
  const topics = topicsFor(config.KAFKA_TOPIC_NAMESPACE);
  const id = randomUUID();
  const record = encodeCloudEvent({ specversion: '1.0', id, source: 'urn:selfservice-cli', type, time: new Date().toISOString(), data }, (data as { orgId?: string }).orgId ?? null);
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  const consumer = kafka.consumer({ groupId: `selfservice-cli-${id}` });
  try {
    await producer.connect();
    await producer.send({ topic: topics[inboundCommands[type].topic], messages: [{ key: record.key, value: record.value, headers: record.headers }] });
    console.log(`sent ${type} as ${id}; waiting for its result...`);
    await consumer.connect();
    await consumer.subscribe({ topic: topics.commandResults, fromBeginning: true });
    const result = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no result within 60 s: are the worker and the ingress running (npm start)?')), 60_000);
      void consumer.run({
        eachMessage: async ({ message }) => {
          const body = JSON.parse(message.value?.toString('utf8') ?? '{}') as Record<string, unknown>;
          if (body.commandId === id) {
            clearTimeout(timer);
            resolve(body);
          }
        },
      });
    });
    console.log(JSON.stringify(result, null, 2));
    return !('code' in result);
  } finally {
    await Promise.allSettled([producer.disconnect(), consumer.disconnect()]);
  }
}

export const sendCommand: CliCommand = { spec, run };
