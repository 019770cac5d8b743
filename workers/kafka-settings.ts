import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { OauthbearerProviderResponse } from 'kafkajs';
import type { KafkaSettings, TopicPolicy } from '../events/kafka';
import { ConfigError, type Config } from './config';

/**
 * How every process reaches Kafka, from the KAFKA_* variables (README, "Production settings: Kafka"):
 *
 *   KAFKA_SSL=true                 TLS; the broker's certificate is checked against the system's CAs
 *   KAFKA_SSL_CA_FILE              ... or against this CA (PEM)
 *   KAFKA_SSL_CERT_FILE/_KEY_FILE  client certificate and key (PEM) for mutual TLS; both or neither
 *   KAFKA_SSL_KEY_PASSWORD         passphrase of an encrypted key
 *   KAFKA_SASL_MECHANISM           plain | scram-sha-256 | scram-sha-512 (KAFKA_SASL_USERNAME/_PASSWORD)
 *                                  | oauthbearer (client-credentials token from KAFKA_OAUTH_TOKEN_URL)
 *   KAFKA_CREATE_TOPICS, KAFKA_TOPIC_PARTITIONS, KAFKA_TOPIC_REPLICATION_FACTOR: see topicPolicyFrom
 *
 * How the variables go together is checked here, all problems in one ConfigError naming the variables.
 * A TLS file given without KAFKA_SSL=true is refused rather than ignored, and a password or a bearer
 * token is never sent in clear (plain and oauthbearer need KAFKA_SSL=true). The PEM files are read and
 * checked at start-up (readable, a key that opens with its password, a certificate that matches it).
 */
export type KafkaVariables = Pick<
  Config,
  | 'KAFKA_BROKERS'
  | 'KAFKA_CLIENT_ID'
  | 'KAFKA_SSL'
  | 'KAFKA_SSL_CA_FILE'
  | 'KAFKA_SSL_CERT_FILE'
  | 'KAFKA_SSL_KEY_FILE'
  | 'KAFKA_SSL_KEY_PASSWORD'
  | 'KAFKA_SSL_REJECT_UNAUTHORIZED'
  | 'KAFKA_SASL_MECHANISM'
  | 'KAFKA_SASL_USERNAME'
  | 'KAFKA_SASL_PASSWORD'
  | 'KAFKA_OAUTH_TOKEN_URL'
  | 'KAFKA_OAUTH_CLIENT_ID'
  | 'KAFKA_OAUTH_CLIENT_SECRET'
  | 'KAFKA_OAUTH_SCOPE'
>;

export interface KafkaSettingsDependencies {
  readFile?: (path: string) => string;
  /** For the OAUTHBEARER token endpoint (tests give their own). */
  fetch?: typeof fetch;
}

export function kafkaSettingsFrom(config: KafkaVariables, dependencies: KafkaSettingsDependencies = {}): KafkaSettings {
  const problems = kafkaVariableProblems(config);
  if (problems.length > 0) throw new ConfigError(`Invalid configuration:\n  ${problems.join('\n  ')}`);
  const readFile = dependencies.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
  const settings: KafkaSettings = { brokers: config.KAFKA_BROKERS, clientId: config.KAFKA_CLIENT_ID, origin: {} };
  const origin = settings.origin!;

  if (config.KAFKA_SSL) {
    const ssl: ConnectionOptions = { rejectUnauthorized: config.KAFKA_SSL_REJECT_UNAUTHORIZED };
    if (config.KAFKA_SSL_CA_FILE) {
      ssl.ca = [readPem(readFile, 'KAFKA_SSL_CA_FILE', config.KAFKA_SSL_CA_FILE, 'CERTIFICATE')];
      origin.caFile = config.KAFKA_SSL_CA_FILE;
    }
    if (config.KAFKA_SSL_CERT_FILE && config.KAFKA_SSL_KEY_FILE) {
      const cert = readPem(readFile, 'KAFKA_SSL_CERT_FILE', config.KAFKA_SSL_CERT_FILE, 'CERTIFICATE');
      const key = readPem(readFile, 'KAFKA_SSL_KEY_FILE', config.KAFKA_SSL_KEY_FILE, 'PRIVATE KEY');
      checkKeyPair(config, cert, key);
      Object.assign(ssl, { cert, key }, config.KAFKA_SSL_KEY_PASSWORD ? { passphrase: config.KAFKA_SSL_KEY_PASSWORD } : {});
      origin.certFile = config.KAFKA_SSL_CERT_FILE;
      origin.keyFile = config.KAFKA_SSL_KEY_FILE;
    }
    settings.ssl = ssl;
  }

  const mechanism = config.KAFKA_SASL_MECHANISM;
  if (mechanism === 'oauthbearer') {
    const client = {
      tokenUrl: config.KAFKA_OAUTH_TOKEN_URL!,
      clientId: config.KAFKA_OAUTH_CLIENT_ID!,
      clientSecret: config.KAFKA_OAUTH_CLIENT_SECRET!,
      scope: config.KAFKA_OAUTH_SCOPE,
    };
    settings.sasl = { mechanism, oauthBearerProvider: oauthTokenProvider(client, { fetch: dependencies.fetch }) };
    origin.oauthTokenUrl = safeUrl(client.tokenUrl);
    origin.oauthClientId = client.clientId;
  } else if (mechanism) {
    settings.sasl = { mechanism, username: config.KAFKA_SASL_USERNAME!, password: config.KAFKA_SASL_PASSWORD! };
  }
  return settings;
}

/** What a process does about missing topics, and how it creates them (also `npm run topics`). */
export function topicPolicyFrom(config: Pick<Config, 'KAFKA_CREATE_TOPICS' | 'KAFKA_TOPIC_PARTITIONS' | 'KAFKA_TOPIC_REPLICATION_FACTOR'>): TopicPolicy {
  return { create: config.KAFKA_CREATE_TOPICS, partitions: config.KAFKA_TOPIC_PARTITIONS, replicationFactor: config.KAFKA_TOPIC_REPLICATION_FACTOR };
}

const names = (variables: string[]) =>
  variables.length <= 1 ? variables.join('') : `${variables.slice(0, -1).join(', ')} and ${variables[variables.length - 1]}`;

/** Every way the KAFKA_* variables do not go together, each naming the variables (never a value). */
export function kafkaVariableProblems(config: KafkaVariables): string[] {
  const problems: string[] = [];
  const set = (variables: Array<keyof KafkaVariables>) => variables.filter((variable) => config[variable] !== undefined);

  const tlsFiles = set(['KAFKA_SSL_CA_FILE', 'KAFKA_SSL_CERT_FILE', 'KAFKA_SSL_KEY_FILE', 'KAFKA_SSL_KEY_PASSWORD']);
  if (!config.KAFKA_SSL && tlsFiles.length > 0) {
    problems.push(`KAFKA_SSL: ${names(tlsFiles)} ${tlsFiles.length === 1 ? 'is' : 'are'} set, which needs KAFKA_SSL=true (a TLS setting is never ignored)`);
  }
  if (Boolean(config.KAFKA_SSL_CERT_FILE) !== Boolean(config.KAFKA_SSL_KEY_FILE)) {
    problems.push('KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE: they go together (a client certificate needs its key): set both or neither');
  }
  if (config.KAFKA_SSL_KEY_PASSWORD && !config.KAFKA_SSL_KEY_FILE) {
    problems.push('KAFKA_SSL_KEY_PASSWORD: set, but KAFKA_SSL_KEY_FILE is not');
  }

  const mechanism = config.KAFKA_SASL_MECHANISM;
  const userVariables = set(['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD']);
  const oauthVariables = set(['KAFKA_OAUTH_TOKEN_URL', 'KAFKA_OAUTH_CLIENT_ID', 'KAFKA_OAUTH_CLIENT_SECRET', 'KAFKA_OAUTH_SCOPE']);
  if (!mechanism) {
    const given = [...userVariables, ...oauthVariables];
    if (given.length > 0) {
      problems.push(`KAFKA_SASL_MECHANISM: not set, but ${names(given)} ${given.length === 1 ? 'is' : 'are'}: set it to plain, scram-sha-256, scram-sha-512 or oauthbearer`);
    }
  } else if (mechanism === 'oauthbearer') {
    const missing = (['KAFKA_OAUTH_TOKEN_URL', 'KAFKA_OAUTH_CLIENT_ID', 'KAFKA_OAUTH_CLIENT_SECRET'] as const).filter((variable) => !config[variable]);
    if (missing.length > 0) problems.push(`${missing.join(', ')}: required when KAFKA_SASL_MECHANISM=oauthbearer`);
    if (userVariables.length > 0) {
      problems.push(`${userVariables.join(', ')}: not used with KAFKA_SASL_MECHANISM=oauthbearer (it signs in with the KAFKA_OAUTH_* client); remove ${userVariables.length === 1 ? 'it' : 'them'}`);
    }
    if (!config.KAFKA_SSL) problems.push('KAFKA_SSL: KAFKA_SASL_MECHANISM=oauthbearer sends a bearer token, which needs KAFKA_SSL=true');
  } else {
    const missing = (['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD'] as const).filter((variable) => !config[variable]);
    if (missing.length > 0) problems.push(`${missing.join(', ')}: required when KAFKA_SASL_MECHANISM=${mechanism}`);
    if (oauthVariables.length > 0) problems.push(`${oauthVariables.join(', ')}: only used with KAFKA_SASL_MECHANISM=oauthbearer, not ${mechanism}`);
    if (mechanism === 'plain' && !config.KAFKA_SSL) {
      problems.push('KAFKA_SSL: KAFKA_SASL_MECHANISM=plain sends the password as it is, which needs KAFKA_SSL=true (or use scram-sha-512)');
    }
  }
  return problems;
}

function readPem(readFile: (path: string) => string, variable: string, path: string, kind: 'CERTIFICATE' | 'PRIVATE KEY'): string {
  let text: string;
  try {
    text = readFile(path);
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    throw new ConfigError(`${variable}: cannot read ${path}: ${code ?? message}`);
  }
  const marker = kind === 'CERTIFICATE' ? /-----BEGIN CERTIFICATE-----/ : /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----/;
  if (!marker.test(text)) throw new ConfigError(`${variable}: ${path} holds no PEM ${kind.toLowerCase()} (no "-----BEGIN ${kind}-----" line)`);
  return text;
}

/** The key opens (with KAFKA_SSL_KEY_PASSWORD if encrypted) and belongs to the certificate. */
function checkKeyPair(config: KafkaVariables, cert: string, key: string): void {
  const keyFile = `KAFKA_SSL_KEY_FILE (${config.KAFKA_SSL_KEY_FILE})`;
  if (!config.KAFKA_SSL_KEY_PASSWORD && /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(key)) {
    throw new ConfigError(`KAFKA_SSL_KEY_PASSWORD: ${keyFile} is encrypted and needs its password`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key, passphrase: config.KAFKA_SSL_KEY_PASSWORD });
  } catch (error) {
    const { code } = error as NodeJS.ErrnoException;
    if (code === 'ERR_MISSING_PASSPHRASE') throw new ConfigError(`KAFKA_SSL_KEY_PASSWORD: ${keyFile} is encrypted and needs its password`);
    if (config.KAFKA_SSL_KEY_PASSWORD) throw new ConfigError(`KAFKA_SSL_KEY_PASSWORD: does not open ${keyFile} (${code ?? 'unreadable key'})`);
    throw new ConfigError(`KAFKA_SSL_KEY_FILE: ${config.KAFKA_SSL_KEY_FILE} is not a private key this process can read (${code ?? (error as Error).message})`);
  }
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (error) {
    throw new ConfigError(`KAFKA_SSL_CERT_FILE: ${config.KAFKA_SSL_CERT_FILE} is not a readable certificate (${(error as Error).message})`);
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new ConfigError(`KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE: the key in ${config.KAFKA_SSL_KEY_FILE} is not the key of the certificate in ${config.KAFKA_SSL_CERT_FILE}`);
  }
}

// ---------------------------------------------------------------------------------------------
// OAUTHBEARER: OAuth 2.0 client credentials (RFC 6749 section 4.4)
// ---------------------------------------------------------------------------------------------

export interface OAuthClient {
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  /** Space-separated scopes. */
  scope?: string;
}

export interface OAuthTokenProviderOptions {
  fetch?: typeof fetch;
  now?: () => number;
  timeoutMs?: number;
}

/** A token request that failed. `retriable`: the endpoint may answer later (network, 5xx); not: the client is refused. */
export class OAuthTokenError extends Error {
  override readonly name = 'OAuthTokenError';
  constructor(
    message: string,
    readonly retriable: boolean,
  ) {
    super(message);
  }
}

/** Token lifetime when the endpoint gives neither `expires_in` nor a JWT `exp`. */
const DEFAULT_LIFETIME_MS = 5 * 60_000;

/**
 * kafkajs's `oauthBearerProvider`: a client-credentials token, fetched when first needed and kept until
 * shortly before it expires (a tenth of its lifetime, at most one minute, before), one request at a
 * time. The client authenticates as Kafka's own Java client does: HTTP Basic with the form-encoded id
 * and secret, `grant_type=client_credentials` and the scope in the body.
 */
export function oauthTokenProvider(client: OAuthClient, options: OAuthTokenProviderOptions = {}): () => Promise<OauthbearerProviderResponse> {
  const now = options.now ?? Date.now;
  let cached: { value: string; refreshAt: number } | undefined;
  let pending: Promise<{ value: string; refreshAt: number }> | undefined;
  return async () => {
    if (cached && now() < cached.refreshAt) return { value: cached.value };
    pending ??= requestToken(client, options.fetch ?? globalThis.fetch, now, options.timeoutMs ?? 10_000)
      .then((token) => (cached = token))
      .finally(() => {
        pending = undefined;
      });
    const token = await pending;
    return { value: token.value };
  };
}

const formEncode = (value: string) => new URLSearchParams({ v: value }).toString().slice(2);

async function requestToken(client: OAuthClient, fetchToken: typeof fetch, now: () => number, timeoutMs: number) {
  const endpoint = safeUrl(client.tokenUrl);
  const body = new URLSearchParams({ grant_type: 'client_credentials' });
  if (client.scope) body.set('scope', client.scope);
  const basic = Buffer.from(`${formEncode(client.clientId)}:${formEncode(client.clientSecret)}`).toString('base64');
  const startedAt = now();
  let response: Response;
  try {
    response = await fetchToken(client.tokenUrl, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: body.toString(),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new OAuthTokenError(`cannot reach the token endpoint ${endpoint} (KAFKA_OAUTH_TOKEN_URL): ${cause?.code ?? cause?.message ?? (error as Error).message}`, true);
  }
  const text = await response.text().catch(() => '');
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = {};
  }
  if (!response.ok) {
    const reason = [json.error, json.error_description].filter((part) => typeof part === 'string' && part).join(': ').slice(0, 300);
    const detail = `HTTP ${response.status}${reason ? `: ${reason}` : ''}`;
    if (response.status >= 500 || response.status === 429 || response.status === 408) {
      throw new OAuthTokenError(`the token endpoint ${endpoint} failed (${detail})`, true);
    }
    throw new OAuthTokenError(
      `the token endpoint ${endpoint} refused client "${client.clientId}" (${detail}): check KAFKA_OAUTH_CLIENT_ID, KAFKA_OAUTH_CLIENT_SECRET and KAFKA_OAUTH_SCOPE`,
      false,
    );
  }
  const value = json.access_token;
  if (typeof value !== 'string' || value.length === 0) {
    throw new OAuthTokenError(`the token endpoint ${endpoint} answered HTTP ${response.status} without an access_token`, false);
  }
  const lifetimeMs = lifetimeOf(json.expires_in, value, startedAt);
  return { value, refreshAt: startedAt + lifetimeMs - Math.min(60_000, lifetimeMs / 10) };
}

function lifetimeOf(expiresIn: unknown, token: string, startedAt: number): number {
  const seconds = typeof expiresIn === 'string' ? Number(expiresIn) : expiresIn;
  if (typeof seconds === 'number' && Number.isFinite(seconds) && seconds > 0) return seconds * 1000;
  try {
    const exp = (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    if (typeof exp === 'number' && exp * 1000 > startedAt) return exp * 1000 - startedAt;
  } catch {
    // not a JWT: the default lifetime
  }
  return DEFAULT_LIFETIME_MS;
}

/** The URL without credentials, query or fragment: safe to print. */
function safeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return '(an invalid URL)';
  }
}
