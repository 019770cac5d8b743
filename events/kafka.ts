import type { ConnectionOptions } from 'node:tls';
import {
  Kafka,
  KafkaJSSASLAuthenticationError,
  logLevel,
  type Admin,
  type AuthenticationProviderArgs,
  type Mechanism,
  type OauthbearerProviderResponse,
  type RetryOptions,
  type SASLOptions,
} from 'kafkajs';
import { TopicNames, topicsFor, type Topics } from './topics';

/**
 * How every process reaches Kafka: brokers, client id and the security settings (TLS, SASL), built from
 * the config by `kafkaSettingsFrom` (workers/kafka-settings.ts). The first connection of a process goes
 * through `connectAdmin`, which fails at once, with a message naming the setting to fix, when Kafka
 * refuses the TLS handshake or the credentials, instead of retrying what no retry can change.
 */
export interface KafkaSettings {
  brokers: string[];
  clientId: string;
  /** TLS options (CA, client certificate and key as PEM text); absent: plaintext. */
  ssl?: ConnectionOptions;
  /** kafkajs SASL options; for OAUTHBEARER, an `oauthBearerProvider`. Absent: no SASL. */
  sasl?: SASLOptions;
  /** Where the settings came from, for messages only (variables, file names, client ids; never a secret). */
  origin?: KafkaSettingsOrigin;
}

export interface KafkaSettingsOrigin {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  oauthTokenUrl?: string;
  oauthClientId?: string;
}

/** What a process may do about the topics of the contract. */
export interface TopicPolicy {
  /** Create the missing ones (true), or only check that they all exist (false). */
  create: boolean;
  partitions: number;
  replicationFactor: number;
}

export const DEFAULT_TOPIC_POLICY: TopicPolicy = { create: true, partitions: 3, replicationFactor: 1 };

/** A start-up failure that no retry fixes; its message says what to change. */
export class KafkaStartupError extends Error {
  override readonly name = 'KafkaStartupError';
}

// Retries at most 3 s apart, so that a broker that comes back is used again within seconds.
const RETRY: RetryOptions = { retries: 10, initialRetryTime: 300, maxRetryTime: 3000 };

const settingsOf = new WeakMap<Kafka, KafkaSettings>();

export function createKafka(settings: KafkaSettings): Kafka {
  const kafka = newKafka(settings, RETRY, logLevel.WARN);
  settingsOf.set(kafka, settings);
  return kafka;
}

export type KafkaLogLevel = 'error' | 'warn' | 'info' | 'debug';
export type KafkaLog = (level: KafkaLogLevel, message: string, fields: Record<string, unknown>) => void;

/** Where kafkajs's own log lines go (the process's logger, set once by its wiring); unset: kafkajs's console logger. */
let kafkaLog: KafkaLog | null = null;

export function routeKafkaLogs(log: KafkaLog | null): void {
  kafkaLog = log;
}

const KAFKA_LOG_LEVELS: Partial<Record<logLevel, KafkaLogLevel>> = { [logLevel.ERROR]: 'error', [logLevel.WARN]: 'warn', [logLevel.INFO]: 'info', [logLevel.DEBUG]: 'debug' };

/** kafkajs's log entries as lines of `log`: the message, the namespace and the broker, the error's text (no record content). */
function kafkaLogCreator(log: KafkaLog) {
  return () =>
    ({ namespace, level, log: entry }: { namespace: string; level: logLevel; log: { message: string; [key: string]: unknown } }) => {
      const { message, broker, clientId, groupId, error, retryCount } = entry;
      const fields = Object.fromEntries(Object.entries({ namespace, broker, clientId, groupId, error, retryCount }).filter(([, value]) => value !== undefined && value !== ''));
      log(KAFKA_LOG_LEVELS[level] ?? 'info', message, fields);
    };
}

function newKafka(settings: KafkaSettings, retry: RetryOptions, level: logLevel): Kafka {
  const { brokers, clientId, ssl } = settings;
  const logCreator = kafkaLog ? kafkaLogCreator(kafkaLog) : undefined;
  return new Kafka({ brokers, clientId, ssl, sasl: saslFor(settings), logLevel: level, connectionTimeout: 3000, retry, ...(logCreator ? { logCreator } : {}) });
}

/** A safe one-line description of how a client connects (no secret), for logs and messages. */
export function describeKafkaSecurity(settings: KafkaSettings): string {
  const tls = settings.ssl
    ? [
        `TLS (${settings.origin?.caFile ? `CA ${settings.origin.caFile}` : 'system CAs'}`,
        settings.origin?.certFile ? `, client certificate ${settings.origin.certFile}` : '',
        settings.ssl.rejectUnauthorized === false ? ', broker certificate NOT verified' : '',
        ')',
      ].join('')
    : 'plaintext';
  const sasl = settings.sasl ? `, SASL ${settings.sasl.mechanism} as ${principalOf(settings)}` : ', no SASL';
  return `${tls}${sasl}`;
}

function principalOf(settings: KafkaSettings): string {
  const sasl = settings.sasl;
  if (!sasl) return 'the anonymous principal';
  if (sasl.mechanism === 'oauthbearer') {
    const client = settings.origin?.oauthClientId ? `OAuth client "${settings.origin.oauthClientId}"` : 'an OAuth client';
    return settings.origin?.oauthTokenUrl ? `${client} of ${settings.origin.oauthTokenUrl}` : client;
  }
  if (sasl.mechanism === 'aws') return 'an AWS identity';
  return `user "${sasl.username}"`;
}

// ---------------------------------------------------------------------------------------------
// First connection: fail fast when no retry can help
// ---------------------------------------------------------------------------------------------

/**
 * Connects an admin client of `kafka`. Before that, one attempt without retries tells a refused TLS
 * handshake or refused credentials (a KafkaStartupError at once) from a broker that is not up yet
 * (left to the usual retries).
 */
export async function connectAdmin(kafka: Kafka): Promise<Admin> {
  const settings = settingsOf.get(kafka);
  if (settings) await verifyKafkaAccess(settings);
  const admin = kafka.admin();
  try {
    await admin.connect();
  } catch (error) {
    const where = settings ? ` at ${settings.brokers.join(',')} (${describeKafkaSecurity(settings)})` : '';
    const explained = settings ? explainKafkaFailure(error, settings) : undefined;
    throw new KafkaStartupError(explained ?? `cannot connect to Kafka${where}: ${messageOf(error)}`, { cause: error });
  }
  return admin;
}

/**
 * A connection and a metadata request without retries; throws KafkaStartupError when Kafka refuses TLS
 * or the credentials. A connection the broker closes at once is tried a second time a second later
 * (a broker going down does that too) before it counts as a listener that wants TLS or SASL.
 */
export async function verifyKafkaAccess(settings: KafkaSettings): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    const admin = newKafka(settings, { retries: 0 }, logLevel.NOTHING).admin();
    try {
      await admin.connect();
      await admin.listTopics(); // a listener that wants SASL answers ApiVersions, then closes
      return;
    } catch (error) {
      const explained = explainKafkaFailure(error, settings);
      if (!explained) return; // not up yet, or a passing failure: the usual retries take it from here
      if (attempt === 1 && chainOf(error).some((entry) => entry.name === 'KafkaJSConnectionClosedError')) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        continue;
      }
      throw new KafkaStartupError(explained, { cause: error });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}

const UNTRUSTED_CERTIFICATE = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);

interface ErrorFacts {
  name?: string;
  code?: string;
  type?: string;
  retriable?: boolean;
  message: string;
}

function chainOf(error: unknown): ErrorFacts[] {
  const chain: ErrorFacts[] = [];
  let current: unknown = error;
  while (current && typeof current === 'object' && chain.length < 10) {
    const { name, code, type, message, retriable } = current as { name?: unknown; code?: unknown; type?: unknown; message?: unknown; retriable?: unknown };
    chain.push({
      name: typeof name === 'string' ? name : undefined,
      code: typeof code === 'string' ? code : undefined,
      type: typeof type === 'string' ? type : undefined,
      retriable: typeof retriable === 'boolean' ? retriable : undefined,
      message: typeof message === 'string' ? message : String(current),
    });
    current = (current as { cause?: unknown }).cause;
  }
  return chain;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A message a person can act on when `error` is one that no retry fixes (TLS refused, credentials
 * refused, mechanism not enabled), else undefined.
 */
export function explainKafkaFailure(error: unknown, settings: KafkaSettings): string | undefined {
  const chain = chainOf(error);
  const brokers = settings.brokers.join(',');
  const mechanism = settings.sasl?.mechanism;

  // The token endpoint refused the client (a token endpoint that is down is left to the retries).
  const tokenFailure = chain.find((entry) => entry.name === 'OAuthTokenError' && entry.retriable === false);
  if (tokenFailure) return `Kafka OAUTHBEARER: ${tokenFailure.message}.`;

  const refused = chain.find((entry) => entry.name === 'KafkaJSSASLAuthenticationError');
  if (refused) {
    const variables =
      mechanism === 'oauthbearer'
        ? 'KAFKA_OAUTH_TOKEN_URL, KAFKA_OAUTH_CLIENT_ID, KAFKA_OAUTH_CLIENT_SECRET, KAFKA_OAUTH_SCOPE'
        : 'KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD, KAFKA_SASL_MECHANISM';
    const what = mechanism === 'oauthbearer' ? 'OAUTHBEARER token' : 'SASL credentials';
    return `Kafka refused the ${what} of ${principalOf(settings)} (mechanism ${mechanism ?? '?'}) at ${brokers}: ${refused.message}. Check ${variables}.`;
  }
  if (chain.some((entry) => entry.type === 'UNSUPPORTED_SASL_MECHANISM')) {
    return `Kafka at ${brokers} does not enable the SASL mechanism ${mechanism ?? '?'} (KAFKA_SASL_MECHANISM) on this listener.`;
  }
  if (chain.some((entry) => entry.type === 'ILLEGAL_SASL_STATE')) {
    return `Kafka at ${brokers} did not expect the SASL handshake: does this listener use SASL? (KAFKA_SASL_MECHANISM=${mechanism ?? ''})`;
  }

  const tls =
    chain.find((entry) => entry.code && /^(ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO)/.test(entry.code)) ??
    chain.find((entry) => /\bSSL routines\b/.test(entry.message));
  if (tls) {
    const code = tls.code ?? 'TLS';
    // "Connection error: 80BC...:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/openssl/...:SSL alert number 42"
    const detail = tls.message
      .replace(/^Connection error: /, '')
      .replace(/^[0-9A-F]+:error:[0-9A-F]+:SSL routines:[^:]*:/, '')
      .replace(/:[^:\s]*\/openssl\/\S*:\d+:/, ', ')
      .replace(/\s+/g, ' ')
      .trim();
    const ca = settings.origin?.caFile ? `the CA in KAFKA_SSL_CA_FILE (${settings.origin.caFile})` : 'the system CAs (KAFKA_SSL_CA_FILE is not set)';
    const cert = settings.origin?.certFile ? `KAFKA_SSL_CERT_FILE (${settings.origin.certFile})` : 'none: KAFKA_SSL_CERT_FILE is not set';
    let problem: string;
    if (UNTRUSTED_CERTIFICATE.has(code)) {
      problem = `the broker's certificate is not signed by ${ca}`;
    } else if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      problem = `the broker's certificate does not name the host in KAFKA_BROKERS`;
    } else if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
      problem = `the broker's certificate is ${code === 'CERT_HAS_EXPIRED' ? 'expired' : 'not valid yet'}`;
    } else if (/CERTIFICATE|HANDSHAKE_FAILURE|UNKNOWN_CA|ACCESS_DENIED/i.test(code) || /alert (bad certificate|certificate|unknown ca|handshake failure)/i.test(tls.message)) {
      problem = `the broker refused this client's certificate (client certificate: ${cert}); it wants one signed by a CA it trusts`;
    } else if (/WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG/.test(code)) {
      problem = 'the broker does not speak TLS on this port: is KAFKA_SSL=true right for this listener?';
    } else {
      problem = 'the TLS handshake failed';
    }
    return `Kafka TLS handshake with ${brokers} failed: ${problem} (${code}: ${detail}).`;
  }
  if (settings.ssl && chain.some((entry) => entry.code === 'ECONNRESET' && /before secure TLS connection/.test(entry.message))) {
    return `Kafka at ${brokers} closed the connection during the TLS handshake: is it a TLS listener? (KAFKA_SSL=true is set)`;
  }
  if (!(settings.ssl && settings.sasl) && chain.some((entry) => entry.name === 'KafkaJSConnectionClosedError')) {
    const wanted = [settings.ssl ? '' : 'TLS (KAFKA_SSL=true)', settings.sasl ? '' : 'SASL (KAFKA_SASL_MECHANISM)'].filter(Boolean).join(' or ');
    return `Kafka at ${brokers} closed the connection at once: does this listener want ${wanted}? (this client: ${describeKafkaSecurity(settings)})`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// OAUTHBEARER: kafkajs 2.2.4 takes the broker's error challenge ({"status":"invalid_token"}) for a
// success and then finds no broker. This authenticator sends the same initial response and refuses
// a non-empty server answer, so a rejected token is reported as such.
// ---------------------------------------------------------------------------------------------

function saslFor(settings: KafkaSettings): SASLOptions | Mechanism | undefined {
  const sasl = settings.sasl;
  if (sasl?.mechanism !== 'oauthbearer') return sasl;
  const provider = sasl.oauthBearerProvider;
  return { mechanism: 'oauthbearer', authenticationProvider: (args) => oauthBearerAuthenticator(provider, args) };
}

// kafkajs's own error class (non-retriable), whose constructor its typings leave without arguments.
const saslRefused = (message: string): Error => new (KafkaJSSASLAuthenticationError as unknown as new (message: string) => Error)(message);

function oauthBearerAuthenticator(provider: () => Promise<OauthbearerProviderResponse>, { saslAuthenticate }: AuthenticationProviderArgs) {
  return {
    async authenticate(): Promise<void> {
      const token = await provider();
      if (!token?.value) throw saslRefused('SASL OAUTHBEARER: the token provider gave no token');
      const message = Buffer.from(`n,,\u0001auth=Bearer ${token.value}\u0001\u0001`);
      const length = Buffer.alloc(4);
      length.writeInt32BE(message.length);
      const request = { encode: async () => Buffer.concat([length, message]) };
      const response = {
        decode: async (raw: Buffer) => raw,
        parse: async (raw: Buffer) => {
          const size = raw.length >= 4 ? raw.readInt32BE(0) : 0;
          const challenge = size > 0 ? raw.subarray(4, 4 + size).toString('utf8') : '';
          if (challenge) {
            let status = challenge;
            try {
              status = String((JSON.parse(challenge) as { status?: unknown }).status ?? challenge);
            } catch {
              // not JSON: keep the raw text
            }
            throw saslRefused(`the broker rejected the token (status ${status.slice(0, 100)})`);
          }
          return true;
        },
      };
      await saslAuthenticate({ request, response });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Topics
// ---------------------------------------------------------------------------------------------

/** The topic names of the contract under `namespace`, in contract order. */
export function contractTopics(namespace: string): string[] {
  const topics = topicsFor(namespace);
  return Object.keys(TopicNames).map((name) => topics[name as keyof Topics]);
}

/** The names among `wanted` that this principal cannot see (missing, or no DESCRIBE on them). */
export async function missingTopics(admin: Admin, wanted: string[]): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  return wanted.filter((topic) => !existing.has(topic));
}

/**
 * Makes sure every topic of the contract exists. With `policy.create` (the local stack's default) it
 * creates the missing ones; without, it only checks and fails listing them. Also the first connection
 * of every process: refused TLS or credentials fail here at once (`connectAdmin`).
 */
export async function ensureTopics(kafka: Kafka, namespace: string, policy: Partial<TopicPolicy> = {}): Promise<Topics> {
  const { create, partitions, replicationFactor } = { ...DEFAULT_TOPIC_POLICY, ...policy };
  const topics = topicsFor(namespace);
  const admin = await connectAdmin(kafka);
  try {
    const missing = await missingTopics(admin, contractTopics(namespace));
    if (missing.length > 0) {
      if (!create) throw new KafkaStartupError(missingTopicsMessage(missing, { partitions, replicationFactor }));
      await createTopics(admin, missing, { partitions, replicationFactor }, settingsOf.get(kafka));
    }
  } finally {
    await admin.disconnect();
  }
  return topics;
}

export function missingTopicsMessage(missing: string[], { partitions, replicationFactor }: Omit<TopicPolicy, 'create'>): string {
  return (
    `Kafka topics missing (or not visible to this principal, which needs DESCRIBE on them): ${missing.join(', ')}. ` +
    `KAFKA_CREATE_TOPICS=false, so this process does not create them: run "npm run topics" once with a principal ` +
    `allowed to create topics (KAFKA_TOPIC_PARTITIONS=${partitions}, KAFKA_TOPIC_REPLICATION_FACTOR=${replicationFactor}), or create them yourself.`
  );
}

/** Creates `topics`; one that appeared meanwhile is fine. Refusals become a KafkaStartupError naming the fix. */
export async function createTopics(
  admin: Admin,
  topics: string[],
  { partitions, replicationFactor }: Omit<TopicPolicy, 'create'>,
  settings?: KafkaSettings,
): Promise<void> {
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: topics.map((topic) => ({ topic, numPartitions: partitions, replicationFactor })),
    });
  } catch (error) {
    const failures: Array<{ topic?: string; type?: string; message?: string }> = ((error as { errors?: unknown }).errors as
      | Array<{ topic?: string; type?: string; message?: string }>
      | undefined) ?? [chainOf(error).find((entry) => entry.type) ?? { message: messageOf(error) }];
    const real = failures.filter((failure) => failure.type !== 'TOPIC_ALREADY_EXISTS');
    if (real.length === 0) return;
    const names = real.map((failure) => failure.topic).filter(Boolean).join(', ') || topics.join(', ');
    const who = settings ? principalOf(settings) : 'this principal';
    if (real.some((failure) => /AUTHORIZATION_FAILED/.test(failure.type ?? ''))) {
      throw new KafkaStartupError(
        `Kafka refused to create the topics ${names} for ${who} (no CREATE permission). Grant it, or set KAFKA_CREATE_TOPICS=false ` +
          `and create them once with "npm run topics" as a principal that may.`,
        { cause: error },
      );
    }
    if (real.some((failure) => failure.type === 'INVALID_REPLICATION_FACTOR')) {
      const detail = real.find((failure) => failure.type === 'INVALID_REPLICATION_FACTOR')?.message ?? '';
      throw new KafkaStartupError(
        `Kafka cannot create the topics ${names} with replication factor ${replicationFactor} (KAFKA_TOPIC_REPLICATION_FACTOR): ${detail}`,
        { cause: error },
      );
    }
    if (real.some((failure) => failure.type === 'INVALID_PARTITIONS')) {
      throw new KafkaStartupError(`Kafka cannot create the topics ${names} with ${partitions} partitions (KAFKA_TOPIC_PARTITIONS)`, { cause: error });
    }
    const detail = real.map((failure) => `${failure.topic ?? '?'}: ${failure.type ?? ''} ${failure.message ?? ''}`.trim()).join('; ');
    throw new KafkaStartupError(`Kafka could not create the topics ${names}: ${detail}`, { cause: error });
  }
}
