import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { AclOperationTypes, AclPermissionTypes, AclResourceTypes, Kafka, logLevel, ResourcePatternTypes } from 'kafkajs';

/**
 * A second, private Kafka broker (KRaft, one node, the jars services/stack.sh installed) with a
 * SASL_SSL listener on a free port, for the security tests. Everything is made here and deleted by
 * stop(): a CA, the broker's certificate (localhost, 127.0.0.1), a client certificate (plain and
 * encrypted key), a second CA nobody trusts; SCRAM users written at format time; PLAIN users in the
 * JAAS config; a tiny OAuth identity provider (client-credentials token endpoint + JWKS) whose RS256
 * tokens the broker validates for OAUTHBEARER. The broker asks for a client certificate (mutual TLS)
 * and runs the StandardAuthorizer: admin, alice, the OAuth client and the internal listeners are super
 * users; `app` may do only what grant() allows.
 */
export interface Credentials {
  username: string;
  password: string;
}

export interface TokenRequest {
  clientId: string;
  grantType: string | null;
  scope: string | null;
}

export interface SecureKafka {
  /** host:port of the SASL_SSL listener. */
  brokers: string;
  dir: string;
  files: { ca: string; clientCert: string; clientKey: string; clientKeyEncrypted: string; otherCa: string; otherClientCert: string; otherClientKey: string };
  clientKeyPassword: string;
  /** SCRAM-SHA-512 and -256, super user. */
  alice: Credentials;
  /** SCRAM-SHA-512, no rights but what grant() gives. */
  app: Credentials;
  /** PLAIN, super user. */
  admin: Credentials;
  oauth: {
    tokenUrl: string;
    /** A client whose tokens the broker accepts (a super user). */
    client: { clientId: string; clientSecret: string };
    /** A client whose tokens carry another audience: the broker refuses them. */
    wrongAudience: { clientId: string; clientSecret: string };
    requests: TokenRequest[];
  };
  /** Config variables for a client of this broker over mutual TLS, plus `extra`. */
  env(extra?: Record<string, string>): Record<string, string>;
  /** ACLs for `principal`: read, write and describe the topics under `topicPrefix`, read every group. */
  grant(principal: string, topicPrefix: string): Promise<void>;
  stop(): Promise<void>;
}

const root = path.resolve(__dirname, '..', '..');

function kafkaLib(): string {
  const cache = path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'selfservice-stack');
  const candidates = [path.join(root, '.stack', 'tools', 'kafka', 'lib')];
  if (existsSync(cache)) {
    for (const entry of readdirSync(cache).filter((name) => /^kafka-\d/.test(name)).sort().reverse()) candidates.push(path.join(cache, entry, 'lib'));
  }
  const found = candidates.find((dir) => existsSync(dir) && readdirSync(dir).some((name) => /^kafka_2\.13-.*\.jar$/.test(name)));
  if (!found) throw new Error(`no Kafka jars in ${candidates.join(' or ')}: run services/stack.sh install`);
  return found;
}

function java(): string {
  return process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function makeCertificates(dir: string, keyPassword: string) {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const file = (name: string) => path.join(dir, name);
  const ca = (name: string, cn: string) => openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${cn}`);
  const leaf = (name: string, cn: string, signer: string, extensions: string) => {
    writeFileSync(file(`${name}.ext`), extensions);
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${signer}.pem`, '-CAkey', `${signer}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
  };
  ca('ca', 'selfservice test CA');
  ca('other-ca', 'a CA nobody here trusts');
  leaf('broker', 'localhost', 'ca', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  leaf('client', 'selfservice-backend', 'ca', 'extendedKeyUsage=clientAuth\n');
  leaf('other-client', 'selfservice-backend', 'other-ca', 'extendedKeyUsage=clientAuth\n');
  openssl('pkcs8', '-topk8', '-in', 'client.key', '-out', 'client-encrypted.key', '-v2', 'aes-256-cbc', '-passout', `pass:${keyPassword}`);
  // Kafka reads a PEM keystore (key + chain) and a PEM truststore directly (ssl.keystore.type=PEM).
  writeFileSync(file('broker-keystore.pem'), readFileSync(file('broker.key'), 'utf8') + readFileSync(file('broker.pem'), 'utf8'));
  return {
    ca: file('ca.pem'),
    clientCert: file('client.pem'),
    clientKey: file('client.key'),
    clientKeyEncrypted: file('client-encrypted.key'),
    otherCa: file('other-ca.pem'),
    otherClientCert: file('other-client.pem'),
    otherClientKey: file('other-client.key'),
  };
}

interface IdentityProvider {
  url: string;
  requests: TokenRequest[];
  close(): Promise<void>;
}

/** Client-credentials token endpoint (/token, HTTP Basic client auth) and its JWKS (/jwks). */
async function startIdentityProvider(clients: Record<string, { secret: string; audience: string }>): Promise<IdentityProvider> {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwks = { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'test-key', alg: 'RS256', use: 'sig' }] };
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const requests: TokenRequest[] = [];
  const formDecode = (value: string) => new URLSearchParams(`v=${value}`).get('v') ?? '';
  const server = http.createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && req.url === '/jwks') return reply(200, jwks);
    let text = '';
    req.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/token') return reply(404, { error: 'not_found' });
      const form = new URLSearchParams(text);
      const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
      const [id = '', secret = ''] = Buffer.from(basic, 'base64').toString('utf8').split(':').map(formDecode);
      requests.push({ clientId: id, grantType: form.get('grant_type'), scope: form.get('scope') });
      const client = clients[id];
      if (!client || client.secret !== secret) return reply(401, { error: 'invalid_client', error_description: 'client authentication failed' });
      if (form.get('grant_type') !== 'client_credentials') return reply(400, { error: 'unsupported_grant_type' });
      const now = Math.floor(Date.now() / 1000);
      const signed = `${b64({ alg: 'RS256', typ: 'JWT', kid: 'test-key' })}.${b64({ sub: id, iss: 'selfservice-test-idp', aud: client.audience, iat: now, exp: now + 3600, scope: form.get('scope') ?? '' })}`;
      const signature = sign('sha256', Buffer.from(signed), privateKey).toString('base64url');
      reply(200, { access_token: `${signed}.${signature}`, token_type: 'Bearer', expires_in: 3600 });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return { url: `http://127.0.0.1:${port}`, requests, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

export async function startSecureKafka(): Promise<SecureKafka> {
  const lib = kafkaLib();
  mkdirSync(path.join(root, '.stack', 'test'), { recursive: true });
  const dir = mkdtempSync(path.join(root, '.stack', 'test', 'secure-kafka-'));
  const clientKeyPassword = randomBytes(12).toString('hex');
  const files = makeCertificates(dir, clientKeyPassword);
  const alice = { username: 'alice', password: randomBytes(12).toString('hex') };
  const app = { username: 'app', password: randomBytes(12).toString('hex') };
  const admin = { username: 'admin', password: randomBytes(12).toString('hex') };
  const oauthClient = { clientId: 'selfservice-oauth', clientSecret: randomBytes(12).toString('hex') };
  const wrongAudience = { clientId: 'wrong-audience', clientSecret: randomBytes(12).toString('hex') };
  const idp = await startIdentityProvider({
    [oauthClient.clientId]: { secret: oauthClient.clientSecret, audience: 'kafka' },
    [wrongAudience.clientId]: { secret: wrongAudience.clientSecret, audience: 'another-service' },
  });

  const [port, controllerPort, internalPort] = [await freePort(), await freePort(), await freePort()];
  const config = path.join(dir, 'server.properties');
  const jaas = (value: string) => value.replace(/"/g, '\\"');
  writeFileSync(
    config,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.bootstrap.servers=127.0.0.1:${controllerPort}`,
      `listeners=SASL_SSL://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort},INTERNAL://127.0.0.1:${internalPort}`,
      `advertised.listeners=SASL_SSL://127.0.0.1:${port},INTERNAL://127.0.0.1:${internalPort}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=INTERNAL',
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL',
      `log.dirs=${path.join(dir, 'data')}`,
      'num.partitions=1',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=3',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'share.coordinator.state.topic.replication.factor=1',
      'share.coordinator.state.topic.min.isr=1',
      'auto.create.topics.enable=false',
      'group.initial.rebalance.delay.ms=0',
      'ssl.keystore.type=PEM',
      `ssl.keystore.location=${path.join(dir, 'broker-keystore.pem')}`,
      'ssl.truststore.type=PEM',
      `ssl.truststore.location=${files.ca}`,
      // On a SASL_SSL listener, ssl.client.auth counts only with the listener prefix.
      'listener.name.sasl_ssl.ssl.client.auth=required',
      'listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER',
      `listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${admin.username}="${jaas(admin.password)}";`,
      'listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
      'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
      'listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;',
      'listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler',
      `sasl.oauthbearer.jwks.endpoint.url=${idp.url}/jwks`,
      'sasl.oauthbearer.expected.audience=kafka',
      'sasl.oauthbearer.expected.issuer=selfservice-test-idp',
      'authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer',
      `super.users=User:ANONYMOUS;User:${admin.username};User:${alice.username};User:${oauthClient.clientId}`,
      '',
    ].join('\n'),
  );
  writeFileSync(
    path.join(dir, 'log4j2.properties'),
    [
      'status = warn',
      'appender.console.type = Console',
      'appender.console.name = STDOUT',
      'appender.console.layout.type = PatternLayout',
      'appender.console.layout.pattern = [%d] %p %m (%c)%n',
      'rootLogger.level = INFO',
      'rootLogger.appenderRef.stdout.ref = STDOUT',
      'logger.config.name = org.apache.kafka.common.config.AbstractConfig',
      'logger.config.level = WARN',
      '',
    ].join('\n'),
  );
  const jvm = (...args: string[]) => [
    '-Xms128m',
    '-Xmx512m',
    '-XX:+UseSerialGC',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${path.join(dir, 'log4j2.properties')}`,
    // Kafka 4 fetches a JWKS only from allowed URLs.
    `-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=${idp.url}/jwks`,
    '-cp',
    `${lib}/*`,
    ...args,
  ];
  const logFile = path.join(dir, 'broker.log');

  let clusterId = randomBytes(16).toString('base64url');
  while (clusterId.startsWith('-')) clusterId = randomBytes(16).toString('base64url');
  try {
    execFileSync(
      java(),
      jvm(
        'kafka.tools.StorageTool',
        'format',
        '--standalone',
        '-t',
        clusterId,
        '-c',
        config,
        '--add-scram',
        `SCRAM-SHA-512=[name=${alice.username},password=${alice.password}]`,
        '--add-scram',
        `SCRAM-SHA-256=[name=${alice.username},password=${alice.password}]`,
        '--add-scram',
        `SCRAM-SHA-512=[name=${app.username},password=${app.password}]`,
      ),
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
  } catch (error) {
    await idp.close();
    throw new Error(`formatting the secure broker's storage failed: ${String((error as { stderr?: Buffer }).stderr ?? error)}`);
  }

  const log = openSync(logFile, 'a');
  const child: ChildProcess = spawn(java(), jvm('kafka.Kafka', config), { stdio: ['ignore', log, log] });
  closeSync(log);
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));

  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exit;
      clearTimeout(timer);
    }
    process.removeListener('exit', killOnExit);
    await idp.close();
    if (!process.env.KEEP_SECURE_KAFKA) rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 120_000;
  const logText = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  while (!/Kafka Server started/.test(logText())) {
    if (exited || Date.now() > deadline) {
      const tail = logText().split('\n').slice(-30).join('\n');
      await stop();
      throw new Error(`the secure broker did not start (${exited ? 'it exited' : 'timeout'}); last lines of its log:\n${tail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }

  const brokers = `127.0.0.1:${port}`;
  const granted = new Map<string, number>();
  const superClient = () =>
    new Kafka({
      brokers: [brokers],
      clientId: 'secure-kafka-setup',
      logLevel: logLevel.NOTHING,
      ssl: { ca: [readFileSync(files.ca, 'utf8')], cert: readFileSync(files.clientCert, 'utf8'), key: readFileSync(files.clientKey, 'utf8') },
      sasl: { mechanism: 'plain', ...admin },
    });

  return {
    brokers,
    dir,
    files,
    clientKeyPassword,
    alice,
    app,
    admin,
    oauth: { tokenUrl: `${idp.url}/token`, client: oauthClient, wrongAudience, requests: idp.requests },
    env: (extra = {}) => ({
      KAFKA_BROKERS: brokers,
      KAFKA_SSL: 'true',
      KAFKA_SSL_CA_FILE: files.ca,
      KAFKA_SSL_CERT_FILE: files.clientCert,
      KAFKA_SSL_KEY_FILE: files.clientKey,
      ...extra,
    }),
    async grant(principal, topicPrefix) {
      const adminClient = superClient().admin();
      await adminClient.connect();
      try {
        const base = { principal: `User:${principal}`, host: '*', permissionType: AclPermissionTypes.ALLOW };
        const topicAcls = [AclOperationTypes.READ, AclOperationTypes.WRITE, AclOperationTypes.DESCRIBE].map((operation) => ({
          ...base,
          operation,
          resourceType: AclResourceTypes.TOPIC,
          resourceName: topicPrefix,
          resourcePatternType: ResourcePatternTypes.PREFIXED,
        }));
        const groupAcl = { ...base, operation: AclOperationTypes.READ, resourceType: AclResourceTypes.GROUP, resourceName: '*', resourcePatternType: ResourcePatternTypes.LITERAL };
        await adminClient.createAcls({ acl: [...topicAcls, groupAcl] });
        const expected = (granted.get(principal) ?? 0) + topicAcls.length + 1;
        granted.set(principal, expected);
        // The authorizer learns ACLs from the metadata log: wait until the broker describes them.
        const until = Date.now() + 15_000;
        for (;;) {
          const { resources } = await adminClient.describeAcls({
            resourceType: AclResourceTypes.ANY,
            resourcePatternType: ResourcePatternTypes.ANY,
            principal: base.principal,
            host: '*',
            operation: AclOperationTypes.ANY,
            permissionType: AclPermissionTypes.ANY,
          });
          if (resources.reduce((sum, resource) => sum + resource.acls.length, 0) >= expected) break;
          if (Date.now() > until) throw new Error(`the ACLs of ${principal} did not show up within 15 s`);
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      } finally {
        await adminClient.disconnect();
      }
    },
    stop,
  };
}
