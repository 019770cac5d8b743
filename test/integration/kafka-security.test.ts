import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { Partitioners } from 'kafkajs';
import { createKafka, ensureTopics, KafkaStartupError } from '../../events/kafka';
import { topicsFor, TopicNames } from '../../events/topics';
import { kafkaSettingsFrom, topicPolicyFrom } from '../../workers/kafka-settings';
import { connectIngress, createWorker } from '../../workers/runtime';
import { startTestBackend, type TestBackend } from '../support/backend';
import { resultFor, sendCommand, TopicProbe } from '../support/kafka-probe';
import { startSecureKafka, type SecureKafka } from '../support/secure-kafka';
import { testConfig, uniqueId } from '../support/test-config';

/**
 * Kafka security against a private broker with a SASL_SSL listener (test/support/secure-kafka.ts):
 * mutual TLS with certificates made by the set-up, SCRAM-SHA-512/256, PLAIN and OAUTHBEARER (tokens
 * from a local client-credentials endpoint, validated by the broker against its JWKS), ACLs, and
 * topic creation that a process may or may not do.
 */
const root = path.resolve(__dirname, '..', '..');
const tsx = path.join(root, 'node_modules', '.bin', 'tsx');
const run = promisify(execFile);
const orgUpserted = 'selfservice.directory.org-upserted.v1';
const ALL_TOPICS = Object.keys(TopicNames).length;

describe('Kafka over TLS and SASL (a private SASL_SSL broker)', () => {
  let broker: SecureKafka;

  beforeAll(async () => {
    broker = await startSecureKafka();
  }, 240_000);

  afterAll(async () => {
    await broker?.stop();
  }, 60_000);

  const scram512 = (user = broker.alice) => ({ KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: user.username, KAFKA_SASL_PASSWORD: user.password });
  const oauth = (client = broker.oauth.client) => ({
    KAFKA_SASL_MECHANISM: 'oauthbearer',
    KAFKA_OAUTH_TOKEN_URL: broker.oauth.tokenUrl,
    KAFKA_OAUTH_CLIENT_ID: client.clientId,
    KAFKA_OAUTH_CLIENT_SECRET: client.clientSecret,
    KAFKA_OAUTH_SCOPE: 'kafka',
  });

  /** What a process does first (createKafka + ensureTopics), then one record produced and consumed back. */
  async function roundTrip(env: Record<string, string>): Promise<void> {
    const config = testConfig(env);
    const kafka = createKafka({ ...kafkaSettingsFrom(config), clientId: 'kafka-security-test' });
    const topics = await ensureTopics(kafka, config.KAFKA_TOPIC_NAMESPACE, topicPolicyFrom(config));
    const probe = await TopicProbe.start(kafka, [topics.userRequests]);
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    try {
      await producer.connect();
      const value = randomUUID();
      await producer.send({ topic: topics.userRequests, messages: [{ key: 'k', value }] });
      await probe.waitFor((record) => record.value?.toString() === value, 'the record just produced');
    } finally {
      await producer.disconnect();
      await probe.stop();
    }
  }

  /** Runs a backend process entry point (or a command) with `env` on top of the test environment. */
  async function runProcess(script: string, args: string[], env: Record<string, string>) {
    const started = Date.now();
    try {
      const { stdout, stderr } = await run(tsx, [path.join(root, script), ...args], { cwd: root, env: { ...process.env, ...env }, timeout: 90_000 });
      return { code: 0, stdout, stderr, ms: Date.now() - started };
    } catch (error) {
      const failed = error as { code?: number; stdout?: string; stderr?: string };
      return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '', ms: Date.now() - started };
    }
  }

  test('SCRAM-SHA-512 over mutual TLS: the backend runs end to end and creates its topics as configured', async () => {
    let backend: TestBackend | undefined;
    let probe: TopicProbe | undefined;
    try {
      backend = await startTestBackend({ overrides: broker.env({ ...scram512(), KAFKA_TOPIC_PARTITIONS: '2' }) });
      probe = await TopicProbe.start(backend.kafka, [backend.topics.commandResults]);
      const orgId = uniqueId('org');
      const commandId = await sendCommand(backend.producer, backend.topics.directory, orgUpserted, { orgId, name: 'Secure Corp', emailDomains: ['secure.example'] });
      const result = await probe.waitFor(resultFor(commandId), `the result of ${commandId}`, 60_000);
      expect(result.type).toBe('selfservice.command.accepted.v1');
      expect(result.data).toMatchObject({ commandId, orgId });

      const admin = backend.kafka.admin();
      await admin.connect();
      try {
        const { topics } = await admin.fetchTopicMetadata({ topics: [backend.topics.directory, backend.topics.commandResults] });
        expect(topics.map((topic) => topic.partitions.length)).toEqual([2, 2]);
      } finally {
        await admin.disconnect();
      }
    } finally {
      await probe?.stop();
      await backend?.stop();
    }
  });

  test('SCRAM-SHA-256 with an encrypted client key (KAFKA_SSL_KEY_PASSWORD) works', async () => {
    await roundTrip(
      broker.env({
        KAFKA_SSL_KEY_FILE: broker.files.clientKeyEncrypted,
        KAFKA_SSL_KEY_PASSWORD: broker.clientKeyPassword,
        KAFKA_SASL_MECHANISM: 'SCRAM-SHA-256',
        KAFKA_SASL_USERNAME: broker.alice.username,
        KAFKA_SASL_PASSWORD: broker.alice.password,
      }),
    );
  });

  test('PLAIN over TLS works', async () => {
    await roundTrip(broker.env({ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: broker.admin.username, KAFKA_SASL_PASSWORD: broker.admin.password }));
  });

  test('a wrong password stops the ingress process at start-up with a clear message, without the password', async () => {
    const wrong = `wrong-${randomUUID()}`;
    const env = { ...broker.env(scram512({ username: 'alice', password: wrong })), KAFKA_TOPIC_NAMESPACE: 'never-created.' };
    const ingress = await runProcess('workers/kafka-ingress.ts', [], env);
    expect(ingress.code).toBe(1);
    // Its log lines are JSON (workers/logger.ts): the message is the line's msg.
    const messages = ingress.stderr
      .split('\n')
      .map((line) => {
        try {
          return String((JSON.parse(line) as { msg?: unknown }).msg ?? line);
        } catch {
          return line;
        }
      })
      .join('\n');
    expect(messages).toContain('ingress: failed: Kafka refused the SASL credentials of user "alice" (mechanism scram-sha-512)');
    expect(messages).toContain('Check KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD, KAFKA_SASL_MECHANISM');
    expect(`${ingress.stdout}${ingress.stderr}`).not.toContain(wrong);
    expect(ingress.ms).toBeLessThan(30_000); // tsx start included; the retries alone would take longer

    // The worker's wiring fails the same way, at once.
    const started = Date.now();
    const failure = createWorker(testConfig(env));
    await expect(failure).rejects.toThrow(KafkaStartupError);
    await expect(failure).rejects.toThrow(/^Kafka refused the SASL credentials of user "alice" \(mechanism scram-sha-512\) at 127\.0\.0\.1:\d+: /);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  test('a CA that did not sign the broker certificate fails at once with a TLS message naming the file', async () => {
    const started = Date.now();
    const failure = connectIngress(testConfig(broker.env({ ...scram512(), KAFKA_SSL_CA_FILE: broker.files.otherCa })));
    await expect(failure).rejects.toThrow(KafkaStartupError);
    await expect(failure).rejects.toThrow(
      `Kafka TLS handshake with ${broker.brokers} failed: the broker's certificate is not signed by the CA in KAFKA_SSL_CA_FILE (${broker.files.otherCa})`,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  test('without a client certificate, or with one of an unknown CA, the broker refuses the handshake: a TLS message says so', async () => {
    const withoutCertificate = broker.env(scram512());
    delete withoutCertificate.KAFKA_SSL_CERT_FILE;
    delete withoutCertificate.KAFKA_SSL_KEY_FILE;
    await expect(connectIngress(testConfig(withoutCertificate))).rejects.toThrow(
      /^Kafka TLS handshake with .* failed: the broker refused this client's certificate \(client certificate: none: KAFKA_SSL_CERT_FILE is not set\)/,
    );
    const foreign = broker.env({ ...scram512(), KAFKA_SSL_CERT_FILE: broker.files.otherClientCert, KAFKA_SSL_KEY_FILE: broker.files.otherClientKey });
    await expect(connectIngress(testConfig(foreign))).rejects.toThrow(
      `the broker refused this client's certificate (client certificate: KAFKA_SSL_CERT_FILE (${broker.files.otherClientCert}))`,
    );
  });

  test('a client without the TLS or SASL its listener wants is told so at start-up', async () => {
    await expect(connectIngress(testConfig({ KAFKA_BROKERS: broker.brokers }))).rejects.toThrow(
      `Kafka at ${broker.brokers} closed the connection at once: does this listener want TLS (KAFKA_SSL=true) or SASL (KAFKA_SASL_MECHANISM)?`,
    );
    await expect(connectIngress(testConfig(broker.env()))).rejects.toThrow(`Kafka at ${broker.brokers} closed the connection at once: does this listener want SASL (KAFKA_SASL_MECHANISM)?`);
    // TLS to the shared plaintext broker of the local stack (only a handshake attempt).
    await expect(connectIngress(testConfig({ KAFKA_SSL: 'true' }))).rejects.toThrow(/closed the connection during the TLS handshake: is it a TLS listener\? \(KAFKA_SSL=true is set\)$/);
  });

  test('OAUTHBEARER: a client-credentials token, fetched once and reused, is accepted by the broker', async () => {
    const before = broker.oauth.requests.length;
    await roundTrip(broker.env(oauth()));
    const requests = broker.oauth.requests.slice(before);
    // One token for the admin, producer and consumer connections of the process: it is cached.
    expect(requests).toEqual([{ clientId: broker.oauth.client.clientId, grantType: 'client_credentials', scope: 'kafka' }]);
  });

  test('OAUTHBEARER: a refused client and a token the broker rejects fail at start-up with clear messages', async () => {
    const badSecret = `bad-${randomUUID()}`;
    const refused = connectIngress(testConfig(broker.env(oauth({ clientId: broker.oauth.client.clientId, clientSecret: badSecret }))));
    await expect(refused).rejects.toThrow(KafkaStartupError);
    await expect(refused).rejects.toThrow(
      `Kafka OAUTHBEARER: the token endpoint ${broker.oauth.tokenUrl} refused client "selfservice-oauth" (HTTP 401: invalid_client: client authentication failed)`,
    );
    await refused.catch((error: Error) => expect(error.message).not.toContain(badSecret));

    const started = Date.now();
    await expect(connectIngress(testConfig(broker.env(oauth(broker.oauth.wrongAudience))))).rejects.toThrow(
      /^Kafka refused the OAUTHBEARER token of OAuth client "wrong-audience" of http:\/\/127\.0\.0\.1:\d+\/token \(mechanism oauthbearer\) at .*: the broker rejected the token \(status invalid_token\)/,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  test('a replication factor the cluster cannot give is named at start-up', async () => {
    await expect(connectIngress(testConfig(broker.env({ ...scram512(), KAFKA_TOPIC_REPLICATION_FACTOR: '3' })))).rejects.toThrow(
      /^Kafka cannot create the topics .* with replication factor 3 \(KAFKA_TOPIC_REPLICATION_FACTOR\)/,
    );
  });

  describe('a principal without create rights (ACLs: read, write, describe its topics; read groups)', () => {
    const namespace = `acl-${randomUUID().slice(0, 8)}.`;
    const appEnv = (extra: Record<string, string> = {}) => broker.env({ ...scram512(broker.app), KAFKA_TOPIC_NAMESPACE: namespace, ...extra });

    beforeAll(async () => {
      await broker.grant(broker.app.username, namespace);
    });

    test('with KAFKA_CREATE_TOPICS=false and no topics, start-up fails listing every missing topic and the command', async () => {
      const failure = connectIngress(testConfig(appEnv({ KAFKA_CREATE_TOPICS: 'false' })));
      await expect(failure).rejects.toThrow(KafkaStartupError);
      const message = await failure.catch((error: Error) => error.message);
      for (const topic of Object.values(topicsFor(namespace))) expect(message).toContain(topic);
      expect(message).toMatch(/^Kafka topics missing \(or not visible to this principal, which needs DESCRIBE on them\): /);
      expect(message).toContain('run "npm run topics" once with a principal allowed to create topics');
    });

    test('allowed to create topics (the default) but without the right, start-up says so', async () => {
      await expect(connectIngress(testConfig(appEnv()))).rejects.toThrow(
        /^Kafka refused to create the topics .* for user "app" \(no CREATE permission\)\. Grant it, or set KAFKA_CREATE_TOPICS=false/,
      );
    });

    test('`npm run topics` creates them as an admin, and a check then finds them all', async () => {
      const adminEnv = broker.env({ ...scram512(), KAFKA_TOPIC_NAMESPACE: namespace, KAFKA_TOPIC_PARTITIONS: '2' });
      const create = await runProcess('workers/topics.ts', [], adminEnv);
      expect(create.stderr).toBe('');
      expect(create.code).toBe(0);
      expect(create.stdout).toContain(`Kafka ${broker.brokers} (TLS (CA ${broker.files.ca}, client certificate ${broker.files.clientCert}), SASL scram-sha-512 as user "alice")`);
      for (const topic of Object.values(topicsFor(namespace))) {
        expect(create.stdout).toMatch(new RegExp(`^created +${topic.replace(/\./g, '\\.')} +2 partitions, replication factor 1$`, 'm'));
      }
      expect(create.stdout).toContain(`${ALL_TOPICS} topics: ${ALL_TOPICS} created, 0 already there`);

      const check = await runProcess('workers/topics.ts', ['check'], appEnv());
      expect(check.code).toBe(0);
      expect(check.stdout.match(/^exists /gm)).toHaveLength(ALL_TOPICS);
      expect(check.stdout).not.toContain(broker.app.password);
    });

    test('with KAFKA_CREATE_TOPICS=false and the topics made, the backend runs end to end as that principal', async () => {
      let backend: TestBackend | undefined;
      let probe: TopicProbe | undefined;
      try {
        backend = await startTestBackend({ overrides: appEnv({ KAFKA_CREATE_TOPICS: 'false' }) });
        probe = await TopicProbe.start(backend.kafka, [backend.topics.commandResults]);
        const orgId = uniqueId('org');
        const commandId = await sendCommand(backend.producer, backend.topics.directory, orgUpserted, { orgId, name: 'Least Privilege Ltd', emailDomains: ['lp.example'] });
        const result = await probe.waitFor(resultFor(commandId), `the result of ${commandId}`, 60_000);
        expect(result.type).toBe('selfservice.command.accepted.v1');
      } finally {
        await probe?.stop();
        await backend?.stop();
      }
    });
  });
});
