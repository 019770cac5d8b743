import { connectAdmin, contractTopics, createKafka, createTopics, describeKafkaSecurity, missingTopics } from '../events/kafka';
import { loadConfig, type Config } from './config';
import { kafkaSettingsFrom, topicPolicyFrom } from './kafka-settings';

const USAGE = `usage:
  npm run topics             create every missing topic of the contract (KAFKA_TOPIC_PARTITIONS partitions,
                             replication factor KAFKA_TOPIC_REPLICATION_FACTOR) and report the existing ones
  npm run topics -- check    only check that every topic exists (exit code 1 when one is missing)
Run it with a principal allowed to create topics; the processes can then run with KAFKA_CREATE_TOPICS=false.
It uses the same KAFKA_* variables as the processes (brokers, TLS, SASL, KAFKA_TOPIC_NAMESPACE).`;

export type TopicsMode = 'create' | 'check';

export interface TopicReport {
  topic: string;
  state: 'created' | 'exists' | 'missing';
  partitions?: number;
  replicationFactor?: number;
}

/** Creates (mode `create`) or checks the topics of the contract and prints one line per topic. */
export async function runTopics(config: Config, mode: TopicsMode, log: (line: string) => void = console.log): Promise<{ ok: boolean; topics: TopicReport[] }> {
  const settings = { ...kafkaSettingsFrom(config), clientId: `${config.KAFKA_CLIENT_ID}-topics` };
  const policy = topicPolicyFrom(config);
  const namespace = config.KAFKA_TOPIC_NAMESPACE;
  log(`Kafka ${settings.brokers.join(',')} (${describeKafkaSecurity(settings)}), topic namespace "${namespace}"`);
  const admin = await connectAdmin(createKafka(settings));
  try {
    const wanted = contractTopics(namespace);
    const missing = await missingTopics(admin, wanted);
    if (mode === 'create' && missing.length > 0) await createTopics(admin, missing, policy, settings);
    const created = mode === 'create' ? new Set(missing) : new Set<string>();
    const present = wanted.filter((topic) => created.has(topic) || !missing.includes(topic));
    const metadata = present.length > 0 ? (await admin.fetchTopicMetadata({ topics: present })).topics : [];
    const shape = new Map(
      metadata.map(({ name, partitions }) => [name, { partitions: partitions.length, replicationFactor: Math.max(0, ...partitions.map((p) => p.replicas.length)) }]),
    );
    const reports: TopicReport[] = wanted.map((topic) => ({
      topic,
      state: created.has(topic) ? 'created' : missing.includes(topic) ? 'missing' : 'exists',
      ...shape.get(topic),
    }));
    const width = Math.max(...wanted.map((topic) => topic.length));
    for (const report of reports) {
      let line = `${report.state.padEnd(8)} ${report.topic.padEnd(width)}`;
      if (report.partitions !== undefined) {
        line += `  ${report.partitions} partition${report.partitions === 1 ? '' : 's'}, replication factor ${report.replicationFactor}`;
        if (report.state === 'exists' && (report.partitions !== policy.partitions || report.replicationFactor !== policy.replicationFactor)) {
          line += ` (configured: ${policy.partitions} and ${policy.replicationFactor}; not changed)`;
        }
      }
      log(line.trimEnd());
    }
    const count = (state: TopicReport['state']) => reports.filter((report) => report.state === state).length;
    if (count('missing') > 0) {
      log(
        `${count('missing')} of ${reports.length} topics missing (or not visible to this principal, which needs DESCRIBE on them): ` +
          `run "npm run topics" with a principal allowed to create topics`,
      );
      return { ok: false, topics: reports };
    }
    log(`${reports.length} topics: ${count('created')} created, ${count('exists')} already there`);
    return { ok: true, topics: reports };
  } finally {
    await admin.disconnect();
  }
}

async function main(args: string[]): Promise<number> {
  const [mode = 'create', ...rest] = args;
  if (mode === '--help' || mode === '-h' || mode === 'help') {
    console.log(USAGE);
    return 0;
  }
  if ((mode !== 'create' && mode !== 'check') || rest.length > 0) {
    console.error(`topics: unknown arguments ${args.join(' ')}\n${USAGE}`);
    return 2;
  }
  const { ok } = await runTopics(loadConfig(), mode);
  return ok ? 0 : 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(`topics: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    },
  );
}
