import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Partitioners } from 'kafkajs';
import { Pool } from 'pg';
import { createDatabase } from '../activities/database';
import { listAuditTrail, listAvailableApps } from '../activities/read-models';
import { importCommands, importFileSchema } from './command-import';
import { describeIssues } from '../events/validation';
import { encodeCloudEvent } from '../events/cloudevents';
import { inboundCommands, isInboundType } from '../events/inbound';
import { createKafka, verifyKafkaAccess } from '../events/kafka';
import { topicsFor } from '../events/topics';
import { loadConfig } from './config';
import { kafkaSettingsFrom } from './kafka-settings';
import { readOutboxBacklog } from './outbox-relay';
import { connectIngress } from './runtime';

const USAGE = `usage:
  npm run cli -- import <file.json>           run directory/admin commands from a file (same validation and workflows as Kafka)
  npm run cli -- send <type> '<json data>'    publish one command to its Kafka topic and print its result
  npm run cli -- available-apps <orgId>       the Available Apps list: apps with requests enabled and their Approval On/Off
  npm run cli -- audit <orgId> [limit]        the org's audit trail, newest first
  npm run cli -- outbox                       events waiting for the outbox relay, and the age of the oldest`;

class UsageError extends Error {}

/** Imports larger than this report their progress (on stderr). */
const IMPORT_CHUNK_REPORTED = 500;

async function runImport(path: string): Promise<boolean> {
  const config = loadConfig();
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new UsageError(`cannot read ${path} as JSON: ${(error as Error).message}`);
  }
  const file = importFileSchema.safeParse(json);
  if (!file.success) throw new UsageError(`${path} is not an import file: ${describeIssues(file.error.issues)}`);

  const runtime = await connectIngress(config, { clientId: `${config.KAFKA_CLIENT_ID}-cli` });
  try {
    const outcomes = await importCommands(file.data, runtime.topics, runtime.router, (done, total) => {
      if (total > IMPORT_CHUNK_REPORTED) console.error(`applied ${done} of ${total}`);
    });
    for (const { index, type, result } of outcomes) {
      const detail = result.outcome === 'ACCEPTED' ? '' : ` ${result.code}: ${result.message}`;
      console.log(`#${index} ${type} ${result.outcome}${detail}`);
    }
    const rejected = outcomes.filter((outcome) => outcome.result.outcome === 'REJECTED').length;
    console.log(`imported ${outcomes.length - rejected} of ${outcomes.length} commands`);
    return rejected === 0;
  } finally {
    await runtime.close();
  }
}

/** Publishes one command as a client app would, then waits for its result on the results topic. */
async function send(type: string, json: string): Promise<boolean> {
  if (!isInboundType(type)) throw new UsageError(`${type} is not an inbound command type`);
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch (error) {
    throw new UsageError(`the data is not JSON: ${(error as Error).message}`);
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

async function main(args: string[]): Promise<boolean> {
  const [command, ...rest] = args;
  switch (command) {
    case 'send': {
      if (!rest[0] || !rest[1]) throw new UsageError('send needs a type and the JSON data');
      return send(rest[0], rest[1]);
    }
    case 'import': {
      if (!rest[0]) throw new UsageError('import needs a file');
      return runImport(rest[0]);
    }
    case 'available-apps':
    case 'audit': {
      const orgId = rest[0];
      if (!orgId) throw new UsageError(`${command} needs an orgId`);
      const config = loadConfig();
      const db = createDatabase(config.DATABASE_URL, config.KAFKA_TOPIC_NAMESPACE);
      try {
        if (command === 'available-apps') {
          const apps = await listAvailableApps(db, orgId);
          console.table(apps.map(({ appId, label, approval, approverSteps }) => ({ appId, label, approval, approverSteps })));
        } else {
          const limit = rest[1] ? Number(rest[1]) : 50;
          if (!Number.isInteger(limit) || limit < 1) throw new UsageError('limit must be a positive whole number');
          for (const entry of await listAuditTrail(db, orgId, limit)) console.log(JSON.stringify(entry));
        }
      } finally {
        await db.$disconnect();
      }
      return true;
    }
    case 'outbox': {
      const config = loadConfig();
      const pool = new Pool({ connectionString: config.DATABASE_URL, max: 1 });
      try {
        const { count, oldestAgeSeconds } = await readOutboxBacklog(pool, config.KAFKA_TOPIC_NAMESPACE);
        console.log(JSON.stringify({ namespace: config.KAFKA_TOPIC_NAMESPACE, unpublished: count, oldestAgeSeconds }));
      } finally {
        await pool.end();
      }
      return true;
    }
    default:
      throw new UsageError(command ? `unknown command ${command}` : 'no command given');
  }
}

main(process.argv.slice(2)).then(
  (ok) => {
    process.exitCode = ok ? 0 : 1;
  },
  (error: unknown) => {
    console.error(error instanceof UsageError ? `${error.message}\n${USAGE}` : `cli: ${(error as Error).message}`);
    process.exitCode = 2;
  },
);
