import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describeKafkaSecurity, explainKafkaFailure, missingTopicsMessage } from '../../events/kafka';
import { ConfigError, loadConfig } from '../../workers/config';
import { kafkaSettingsFrom, oauthTokenProvider, OAuthTokenError, topicPolicyFrom } from '../../workers/kafka-settings';

/** The KAFKA_* security and topic variables, how they go together, and what reaches kafkajs. */
let dir: string;
const file = (name: string) => path.join(dir, name);

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'kafka-settings-'));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=unit CA');
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client.key', '-out', 'client.pem', '-days', '1', '-subj', '/CN=unit client');
  openssl('pkcs8', '-topk8', '-in', 'client.key', '-out', 'client-encrypted.key', '-v2', 'aes-256-cbc', '-passout', 'pass:key-secret');
  writeFileSync(file('not-pem.txt'), 'hello');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const settingsFor = (env: Record<string, string>, fetchToken?: typeof fetch) => kafkaSettingsFrom(loadConfig(env), { fetch: fetchToken });

describe('Kafka variables', () => {
  test('defaults: plaintext, no SASL, topics created with 3 partitions and replication factor 1', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ KAFKA_SSL: false, KAFKA_SSL_REJECT_UNAUTHORIZED: true, KAFKA_CREATE_TOPICS: true, KAFKA_TOPIC_PARTITIONS: 3, KAFKA_TOPIC_REPLICATION_FACTOR: 1 });
    expect(topicPolicyFrom(config)).toEqual({ create: true, partitions: 3, replicationFactor: 1 });
    const settings = kafkaSettingsFrom(config);
    expect(settings).toMatchObject({ brokers: ['127.0.0.1:9092'], clientId: 'selfservice-backend' });
    expect(settings.ssl).toBeUndefined();
    expect(settings.sasl).toBeUndefined();
    expect(describeKafkaSecurity(settings)).toBe('plaintext, no SASL');
  });

  test('topic settings', () => {
    const config = loadConfig({ KAFKA_CREATE_TOPICS: 'false', KAFKA_TOPIC_PARTITIONS: '12', KAFKA_TOPIC_REPLICATION_FACTOR: '3' });
    expect(topicPolicyFrom(config)).toEqual({ create: false, partitions: 12, replicationFactor: 3 });
    expect(() => loadConfig({ KAFKA_TOPIC_PARTITIONS: '0' })).toThrow(/KAFKA_TOPIC_PARTITIONS/);
    expect(() => loadConfig({ KAFKA_TOPIC_REPLICATION_FACTOR: 'two' })).toThrow(/KAFKA_TOPIC_REPLICATION_FACTOR/);
    expect(() => loadConfig({ KAFKA_CREATE_TOPICS: 'maybe' })).toThrow(/KAFKA_CREATE_TOPICS/);
  });

  test('single values are checked by the config module, naming the variable', () => {
    expect(() => loadConfig({ KAFKA_SSL: 'yes' })).toThrow(/KAFKA_SSL: /);
    expect(() => loadConfig({ KAFKA_SASL_MECHANISM: 'gssapi' })).toThrow(/KAFKA_SASL_MECHANISM: .*"plain"\|"scram-sha-256"\|"scram-sha-512"\|"oauthbearer"/);
    expect(() => loadConfig({ KAFKA_OAUTH_TOKEN_URL: 'ftp://idp.example/token' })).toThrow(/KAFKA_OAUTH_TOKEN_URL/);
    expect(loadConfig({ KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512' }).KAFKA_SASL_MECHANISM).toBe('scram-sha-512');
  });

  test.each([
    [{ KAFKA_SSL_CA_FILE: '/ca.pem' }, 'KAFKA_SSL: KAFKA_SSL_CA_FILE is set, which needs KAFKA_SSL=true'],
    [{ KAFKA_SSL: 'true', KAFKA_SSL_CERT_FILE: '/c.pem' }, 'KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE: they go together'],
    [{ KAFKA_SSL: 'true', KAFKA_SSL_KEY_PASSWORD: 'x' }, 'KAFKA_SSL_KEY_PASSWORD: set, but KAFKA_SSL_KEY_FILE is not'],
    [{ KAFKA_SASL_MECHANISM: 'scram-sha-512' }, 'KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD: required when KAFKA_SASL_MECHANISM=scram-sha-512'],
    [{ KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_USERNAME: 'u' }, 'KAFKA_SASL_PASSWORD: required when KAFKA_SASL_MECHANISM=scram-sha-256'],
    [{ KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' }, 'KAFKA_SASL_MECHANISM: not set, but KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are'],
    [{ KAFKA_SSL: 'true', KAFKA_SASL_MECHANISM: 'oauthbearer' }, 'KAFKA_OAUTH_TOKEN_URL, KAFKA_OAUTH_CLIENT_ID, KAFKA_OAUTH_CLIENT_SECRET: required when KAFKA_SASL_MECHANISM=oauthbearer'],
    [
      { KAFKA_SSL: 'true', KAFKA_SASL_MECHANISM: 'oauthbearer', KAFKA_OAUTH_TOKEN_URL: 'https://idp/t', KAFKA_OAUTH_CLIENT_ID: 'c', KAFKA_OAUTH_CLIENT_SECRET: 's', KAFKA_SASL_USERNAME: 'u' },
      'KAFKA_SASL_USERNAME: not used with KAFKA_SASL_MECHANISM=oauthbearer',
    ],
    [{ KAFKA_SSL: 'true', KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p', KAFKA_OAUTH_SCOPE: 's' }, 'KAFKA_OAUTH_SCOPE: only used with KAFKA_SASL_MECHANISM=oauthbearer'],
    [{ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' }, 'KAFKA_SSL: KAFKA_SASL_MECHANISM=plain sends the password as it is, which needs KAFKA_SSL=true'],
    [
      { KAFKA_SASL_MECHANISM: 'oauthbearer', KAFKA_OAUTH_TOKEN_URL: 'https://idp/t', KAFKA_OAUTH_CLIENT_ID: 'c', KAFKA_OAUTH_CLIENT_SECRET: 's' },
      'KAFKA_SSL: KAFKA_SASL_MECHANISM=oauthbearer sends a bearer token, which needs KAFKA_SSL=true',
    ],
  ])('%j is refused: %s', (env, message) => {
    expect(() => settingsFor(env)).toThrow(ConfigError);
    expect(() => settingsFor(env)).toThrow(message);
  });

  test('every problem is listed at once, and no value is printed', () => {
    const env = { KAFKA_SSL_KEY_PASSWORD: 'hunter2-key', KAFKA_SASL_USERNAME: 'alice', KAFKA_SASL_PASSWORD: 'hunter2-sasl' };
    let message = '';
    try {
      settingsFor(env);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message.split('\n')).toEqual([
      'Invalid configuration:',
      '  KAFKA_SSL: KAFKA_SSL_KEY_PASSWORD is set, which needs KAFKA_SSL=true (a TLS setting is never ignored)',
      '  KAFKA_SSL_KEY_PASSWORD: set, but KAFKA_SSL_KEY_FILE is not',
      '  KAFKA_SASL_MECHANISM: not set, but KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are: set it to plain, scram-sha-256, scram-sha-512 or oauthbearer',
    ]);
    expect(message).not.toMatch(/hunter2|alice/);
  });
});

describe('kafkaSettingsFrom: TLS', () => {
  test('reads the CA, the client certificate and key, and passes them to kafkajs', () => {
    const settings = settingsFor({ KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: file('ca.pem'), KAFKA_SSL_CERT_FILE: file('client.pem'), KAFKA_SSL_KEY_FILE: file('client.key') });
    expect(settings.ssl?.rejectUnauthorized).toBe(true);
    expect(String((settings.ssl?.ca as string[])[0])).toContain('-----BEGIN CERTIFICATE-----');
    expect(String(settings.ssl?.cert)).toContain('-----BEGIN CERTIFICATE-----');
    expect(String(settings.ssl?.key)).toContain('PRIVATE KEY-----');
    expect(settings.ssl?.passphrase).toBeUndefined();
    expect(describeKafkaSecurity(settings)).toBe(`TLS (CA ${file('ca.pem')}, client certificate ${file('client.pem')}), no SASL`);
  });

  test('TLS alone trusts the system CAs; KAFKA_SSL_REJECT_UNAUTHORIZED=false is passed on and shown', () => {
    expect(settingsFor({ KAFKA_SSL: 'true' }).ssl).toEqual({ rejectUnauthorized: true });
    const settings = settingsFor({ KAFKA_SSL: 'true', KAFKA_SSL_REJECT_UNAUTHORIZED: 'false' });
    expect(settings.ssl).toEqual({ rejectUnauthorized: false });
    expect(describeKafkaSecurity(settings)).toBe('TLS (system CAs, broker certificate NOT verified), no SASL');
  });

  test('an encrypted key opens with KAFKA_SSL_KEY_PASSWORD, which is passed on as the passphrase', () => {
    const env = { KAFKA_SSL: 'true', KAFKA_SSL_CERT_FILE: file('client.pem'), KAFKA_SSL_KEY_FILE: file('client-encrypted.key') };
    expect(settingsFor({ ...env, KAFKA_SSL_KEY_PASSWORD: 'key-secret' }).ssl?.passphrase).toBe('key-secret');
    expect(() => settingsFor(env)).toThrow(`KAFKA_SSL_KEY_PASSWORD: KAFKA_SSL_KEY_FILE (${file('client-encrypted.key')}) is encrypted and needs its password`);
    let message = '';
    try {
      settingsFor({ ...env, KAFKA_SSL_KEY_PASSWORD: 'not-the-secret' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/^KAFKA_SSL_KEY_PASSWORD: does not open KAFKA_SSL_KEY_FILE/);
    expect(message).not.toContain('not-the-secret');
  });

  test('unreadable, non-PEM or mismatched files are named at start-up', () => {
    expect(() => settingsFor({ KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: file('missing.pem') })).toThrow(`KAFKA_SSL_CA_FILE: cannot read ${file('missing.pem')}: ENOENT`);
    expect(() => settingsFor({ KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: file('not-pem.txt') })).toThrow(`KAFKA_SSL_CA_FILE: ${file('not-pem.txt')} holds no PEM certificate`);
    expect(() => settingsFor({ KAFKA_SSL: 'true', KAFKA_SSL_CERT_FILE: file('client.pem'), KAFKA_SSL_KEY_FILE: file('ca.pem') })).toThrow(
      `KAFKA_SSL_KEY_FILE: ${file('ca.pem')} holds no PEM private key`,
    );
    expect(() => settingsFor({ KAFKA_SSL: 'true', KAFKA_SSL_CERT_FILE: file('client.pem'), KAFKA_SSL_KEY_FILE: file('ca.key') })).toThrow(
      `KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE: the key in ${file('ca.key')} is not the key of the certificate in ${file('client.pem')}`,
    );
  });
});

describe('kafkaSettingsFrom: SASL', () => {
  test.each(['plain', 'scram-sha-256', 'scram-sha-512'])('%s: username and password reach kafkajs; only the user is described', (mechanism) => {
    const settings = settingsFor({ KAFKA_SSL: 'true', KAFKA_SASL_MECHANISM: mechanism, KAFKA_SASL_USERNAME: 'svc-ingress', KAFKA_SASL_PASSWORD: 'hunter2' });
    expect(settings.sasl).toEqual({ mechanism, username: 'svc-ingress', password: 'hunter2' });
    expect(describeKafkaSecurity(settings)).toBe(`TLS (system CAs), SASL ${mechanism} as user "svc-ingress"`);
  });

  test('scram without TLS is allowed (the password never crosses the wire)', () => {
    expect(settingsFor({ KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' }).ssl).toBeUndefined();
  });
});

describe('OAUTHBEARER: client-credentials tokens', () => {
  interface Seen {
    authorization?: string;
    body: URLSearchParams;
  }
  let server: http.Server;
  let url: string;
  let seen: Seen[];
  let answer: (index: number) => { status: number; body: unknown };

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let text = '';
      req.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      req.on('end', () => {
        seen.push({ authorization: req.headers.authorization, body: new URLSearchParams(text) });
        const { status, body } = answer(seen.length);
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/oauth2/token`;
  });

  beforeEach(() => {
    seen = [];
    answer = (index) => ({ status: 200, body: { access_token: `token-${index}`, token_type: 'Bearer', expires_in: 3600 } });
  });

  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const oauthEnv = () => ({
    KAFKA_SSL: 'true',
    KAFKA_SASL_MECHANISM: 'oauthbearer',
    KAFKA_OAUTH_TOKEN_URL: url,
    KAFKA_OAUTH_CLIENT_ID: 'selfservice ingress',
    KAFKA_OAUTH_CLIENT_SECRET: 's3cr+t/~',
    KAFKA_OAUTH_SCOPE: 'kafka.produce kafka.consume',
  });

  test('kafkaSettingsFrom gives kafkajs an oauthBearerProvider that fetches a token from the endpoint (HTTP Basic, form body)', async () => {
    const settings = settingsFor(oauthEnv());
    expect(settings.sasl?.mechanism).toBe('oauthbearer');
    const provider = (settings.sasl as { oauthBearerProvider: () => Promise<{ value: string }> }).oauthBearerProvider;
    await expect(provider()).resolves.toEqual({ value: 'token-1' });
    expect(seen).toHaveLength(1);
    const basic = Buffer.from(seen[0]!.authorization!.replace(/^Basic /, ''), 'base64').toString('utf8');
    expect(basic).toBe('selfservice+ingress:s3cr%2Bt%2F%7E'); // form-encoded, as Kafka's Java client does
    expect(Object.fromEntries(seen[0]!.body)).toEqual({ grant_type: 'client_credentials', scope: 'kafka.produce kafka.consume' });
    expect(describeKafkaSecurity(settings)).toBe(`TLS (system CAs), SASL oauthbearer as OAuth client "selfservice ingress" of ${url}`);
  });

  test('the token is cached until shortly before it expires, and one request serves concurrent callers', async () => {
    let now = 1_000_000;
    const provider = oauthTokenProvider({ tokenUrl: url, clientId: 'c', clientSecret: 's' }, { now: () => now });
    const [a, b, c] = await Promise.all([provider(), provider(), provider()]);
    expect([a, b, c]).toEqual([{ value: 'token-1' }, { value: 'token-1' }, { value: 'token-1' }]);
    now += 3_500_000; // 58 min 20 s: still more than a minute left
    await expect(provider()).resolves.toEqual({ value: 'token-1' });
    now += 50_000; // 59 min 10 s: less than a minute left
    await expect(provider()).resolves.toEqual({ value: 'token-2' });
    expect(seen).toHaveLength(2);
  });

  test('without expires_in, the JWT exp decides; short tokens are refreshed a tenth of their life early', async () => {
    let now = Date.UTC(2030, 0, 1);
    const jwt = (exp: number) => `h.${Buffer.from(JSON.stringify({ exp })).toString('base64url')}.s`;
    answer = () => ({ status: 200, body: { access_token: jwt(Math.floor(now / 1000) + 100) } });
    const provider = oauthTokenProvider({ tokenUrl: url, clientId: 'c', clientSecret: 's' }, { now: () => now });
    await provider();
    now += 89_000;
    await provider();
    expect(seen).toHaveLength(1);
    now += 2_000;
    await provider();
    expect(seen).toHaveLength(2);
  });

  test('a refused client is a non-retriable error that names the client and the variables, never the secret', async () => {
    answer = () => ({ status: 401, body: { error: 'invalid_client', error_description: 'bad credentials' } });
    const provider = oauthTokenProvider({ tokenUrl: url, clientId: 'svc', clientSecret: 'very-secret-value' });
    const error = (await provider().catch((caught: unknown) => caught)) as OAuthTokenError;
    expect(error).toBeInstanceOf(OAuthTokenError);
    expect(error.retriable).toBe(false);
    expect(error.message).toBe(
      `the token endpoint ${url} refused client "svc" (HTTP 401: invalid_client: bad credentials): check KAFKA_OAUTH_CLIENT_ID, KAFKA_OAUTH_CLIENT_SECRET and KAFKA_OAUTH_SCOPE`,
    );
    expect(explainKafkaFailure(error, { brokers: ['b:9093'], clientId: 'x' })).toBe(`Kafka OAUTHBEARER: ${error.message}.`);
  });

  test('an endpoint that is down or failing is retriable (left to the connection retries)', async () => {
    answer = () => ({ status: 503, body: {} });
    const failing = (await oauthTokenProvider({ tokenUrl: url, clientId: 'c', clientSecret: 's' })().catch((caught: unknown) => caught)) as OAuthTokenError;
    expect(failing.retriable).toBe(true);
    expect(failing.message).toBe(`the token endpoint ${url} failed (HTTP 503)`);
    expect(explainKafkaFailure(failing, { brokers: ['b:9093'], clientId: 'x' })).toBeUndefined();

    const closed = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const tokenUrl = `http://127.0.0.1:${closed}/token`;
    const unreachable = (await oauthTokenProvider({ tokenUrl, clientId: 'c', clientSecret: 's' })().catch((caught: unknown) => caught)) as OAuthTokenError;
    expect(unreachable.retriable).toBe(true);
    expect(unreachable.message).toBe(`cannot reach the token endpoint ${tokenUrl} (KAFKA_OAUTH_TOKEN_URL): ECONNREFUSED`);
  });

  test('an answer without access_token is refused', async () => {
    answer = () => ({ status: 200, body: { token_type: 'Bearer' } });
    await expect(oauthTokenProvider({ tokenUrl: url, clientId: 'c', clientSecret: 's' })()).rejects.toThrow(`the token endpoint ${url} answered HTTP 200 without an access_token`);
  });
});

describe('start-up failure messages', () => {
  const settings = { brokers: ['kafka-1:9093'], clientId: 'x', origin: { caFile: '/etc/kafka/ca.pem' } };
  const connectionError = (code: string, message: string) => Object.assign(new Error(`Connection error: ${message}`), { name: 'KafkaJSConnectionError', code });

  test('TLS problems say which side and which file', () => {
    expect(explainKafkaFailure(connectionError('SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain'), settings)).toBe(
      "Kafka TLS handshake with kafka-1:9093 failed: the broker's certificate is not signed by the CA in KAFKA_SSL_CA_FILE (/etc/kafka/ca.pem) (SELF_SIGNED_CERT_IN_CHAIN: self-signed certificate in certificate chain).",
    );
    expect(explainKafkaFailure(connectionError('ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames"), settings)).toMatch(
      /the broker's certificate does not name the host in KAFKA_BROKERS/,
    );
    expect(explainKafkaFailure(connectionError('ERR_SSL_WRONG_VERSION_NUMBER', 'wrong version number'), settings)).toMatch(/does not speak TLS on this port/);
  });

  test('a refused SASL mechanism is named; an unreachable broker is left to the retries', () => {
    const withSasl = { ...settings, sasl: { mechanism: 'scram-sha-256' as const, username: 'u', password: 'p' } };
    expect(explainKafkaFailure(Object.assign(new Error('x'), { type: 'UNSUPPORTED_SASL_MECHANISM' }), withSasl)).toBe(
      'Kafka at kafka-1:9093 does not enable the SASL mechanism scram-sha-256 (KAFKA_SASL_MECHANISM) on this listener.',
    );
    expect(explainKafkaFailure(connectionError('ECONNREFUSED', 'connect ECONNREFUSED'), withSasl)).toBeUndefined();
  });

  test('a connection closed at once hints at the TLS or SASL the listener may want', () => {
    const closed = Object.assign(new Error('Closed connection'), { name: 'KafkaJSConnectionClosedError' });
    expect(explainKafkaFailure(closed, settings)).toBe(
      'Kafka at kafka-1:9093 closed the connection at once: does this listener want TLS (KAFKA_SSL=true) or SASL (KAFKA_SASL_MECHANISM)? (this client: plaintext, no SASL)',
    );
    const secured = { ...settings, ssl: { rejectUnauthorized: true }, sasl: { mechanism: 'plain' as const, username: 'u', password: 'p' } };
    expect(explainKafkaFailure(closed, secured)).toBeUndefined();
    const reset = connectionError('ECONNRESET', 'Client network socket disconnected before secure TLS connection was established');
    expect(explainKafkaFailure(reset, secured)).toBe('Kafka at kafka-1:9093 closed the connection during the TLS handshake: is it a TLS listener? (KAFKA_SSL=true is set)');
  });

  test('missing topics: all of them and the command to make them', () => {
    expect(missingTopicsMessage(['a.v1', 'b.v1'], { partitions: 6, replicationFactor: 3 })).toBe(
      'Kafka topics missing (or not visible to this principal, which needs DESCRIBE on them): a.v1, b.v1. KAFKA_CREATE_TOPICS=false, so this process ' +
        'does not create them: run "npm run topics" once with a principal allowed to create topics (KAFKA_TOPIC_PARTITIONS=6, KAFKA_TOPIC_REPLICATION_FACTOR=3), or create them yourself.',
    );
  });
});
