import { z } from 'zod';
import { Limits } from '../events/limits';

/**
 * The one place where process settings are read. Every process (worker, ingress, CLI, tests) calls
 * `loadConfig()` at start-up; a wrong or missing value fails fast with the variable's name.
 */
const configSchema = z.object({
  TEMPORAL_ADDRESS: z.string().regex(/^[^\s:]+:\d+$/, 'must be host:port').default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('self-service'),
  TEMPORAL_UI_URL: z.url().default('http://127.0.0.1:8233'),
  KAFKA_BROKERS: z
    .string()
    .default('127.0.0.1:9092')
    .transform((value) => value.split(',').map((broker) => broker.trim()).filter(Boolean))
    .pipe(z.array(z.string().regex(/^[^\s:]+:\d+$/, 'each broker must be host:port')).min(1)),
  KAFKA_CLIENT_ID: z.string().min(1).default('selfservice-backend'),
  KAFKA_TOPIC_NAMESPACE: z
    .string()
    .regex(/^[A-Za-z0-9._-]*$/, 'may hold only letters, digits, ".", "_" and "-"')
    .default(''),
  KAFKA_CONSUMER_GROUP: z.string().min(1).default('selfservice-ingress'),
  // ---- Kafka security and topics (issue 9; README "Production settings: Kafka") --------------------
  // Read by workers/kafka-settings.ts, which also checks how these go together (one message naming the
  // variables) and reads the PEM files. Secrets are never printed.
  /** TLS to the brokers. The files are PEM; without a CA file the system's CAs are trusted. */
  KAFKA_SSL: z.enum(['true', 'false']).default('false').transform((value) => value === 'true'),
  KAFKA_SSL_CA_FILE: z.string().min(1).optional(),
  /** Client certificate and key (mutual TLS): both or neither. */
  KAFKA_SSL_CERT_FILE: z.string().min(1).optional(),
  KAFKA_SSL_KEY_FILE: z.string().min(1).optional(),
  /** Passphrase of an encrypted KAFKA_SSL_KEY_FILE. */
  KAFKA_SSL_KEY_PASSWORD: z.string().min(1).optional(),
  /** false accepts any broker certificate: for a test broker only, never in production. */
  KAFKA_SSL_REJECT_UNAUTHORIZED: z.enum(['true', 'false']).default('true').transform((value) => value === 'true'),
  /** SASL: plain and scram-* use the username and password; oauthbearer uses the KAFKA_OAUTH_* client. */
  KAFKA_SASL_MECHANISM: z.preprocess(
    (value) => (typeof value === 'string' ? value.toLowerCase() : value),
    z.enum(['plain', 'scram-sha-256', 'scram-sha-512', 'oauthbearer']).optional(),
  ),
  KAFKA_SASL_USERNAME: z.string().min(1).optional(),
  KAFKA_SASL_PASSWORD: z.string().min(1).optional(),
  /** OAUTHBEARER: an OAuth 2.0 client-credentials token from this endpoint (cached until shortly before it expires). */
  KAFKA_OAUTH_TOKEN_URL: z.url({ protocol: /^https?$/ }).optional(),
  KAFKA_OAUTH_CLIENT_ID: z.string().min(1).optional(),
  KAFKA_OAUTH_CLIENT_SECRET: z.string().min(1).optional(),
  /** Space-separated scopes to ask for, if the identity provider wants any. */
  KAFKA_OAUTH_SCOPE: z.string().min(1).optional(),
  /**
   * true (the local stack): a process creates the topics it misses. false: it only checks that they all
   * exist and stops, listing the missing ones, when they do not (create them with `npm run topics`).
   */
  KAFKA_CREATE_TOPICS: z.enum(['true', 'false']).default('true').transform((value) => value === 'true'),
  /** Partitions and replication factor of topics created by a process or by `npm run topics`. */
  KAFKA_TOPIC_PARTITIONS: z.coerce.number().int().min(1).max(10_000).default(3),
  KAFKA_TOPIC_REPLICATION_FACTOR: z.coerce.number().int().min(1).max(32_767).default(1),
  // ---- end of Kafka security and topics ------------------------------------------------------------
  /** The application role (least privilege; no default password: `npm start` sets the local one). */
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgresql:// URL')
    .default('postgresql://selfservice_app@127.0.0.1:5433/selfservice'),
  /** The owner role: used only to run the migrations (and by tests that alter tables). */
  MIGRATION_DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgresql:// URL')
    .default('postgresql://selfservice:selfservice@127.0.0.1:5433/selfservice'),
  SMTP_URL: z
    .string()
    .regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL')
    .default('smtp://127.0.0.1:1025'),
  MAIL_FROM: z.string().min(3).default('Self Service <self-service@localhost>'),
  MAILPIT_URL: z.url().default('http://127.0.0.1:8025'),
  /** AES-256 key (base64) that encrypts Temporal payloads; required by every process that talks to Temporal. */
  PAYLOAD_ENCRYPTION_KEY: z.string().optional(),
  /**
   * The id written with every payload the key encrypts. Unset (the default), it is derived from the key
   * itself (`k-` and 12 hex digits, workers/payload-codec.ts `keyIdOf`), so two different keys never
   * share an id; such a key also decodes payloads labelled `key-1`, the id every key had before.
   */
  PAYLOAD_ENCRYPTION_KEY_ID: z.string().regex(/^[A-Za-z0-9._-]+$/).optional(),
  /**
   * Older keys still needed to read existing histories after a rotation, comma-separated: `id:base64`,
   * or a bare `base64` whose id is derived from the key (as PAYLOAD_ENCRYPTION_KEY's is by default).
   */
  PAYLOAD_DECRYPTION_KEYS: z
    .string()
    .default('')
    .transform((value) => value.split(',').map((entry) => entry.trim()).filter(Boolean)),
  /** The largest inbound record (key + value + headers) accepted, in bytes; larger ones are dead-lettered. */
  MAX_EVENT_BYTES: z.coerce.number().int().min(4096).max(1_000_000).default(Limits.eventBytes),
  /**
   * Workflows the worker keeps in memory between their tasks. Pending requests wait for days: beyond this
   * many, the least recently used are evicted and replayed from their history when they next wake, which
   * keeps the worker's memory flat however many requests are pending.
   */
  /**
   * Workflows kept in the worker's memory between tasks (about 1 MB each); the rest are replayed from
   * their history when a task comes. 250 keeps the worker under 1 GiB with 10,000 requests waiting.
   */
  WORKER_MAX_CACHED_WORKFLOWS: z.coerce.number().int().min(0).max(100_000).default(250),
  // ---- Operations: metrics, health, shutdown (README "Operations") ---------------------------------
  /** Address the ops endpoints (GET /metrics, /livez, /readyz) of the worker, the ingress and the relay bind to. */
  OPS_HOST: z.string().min(1).default('127.0.0.1'),
  /** Port of each process's ops endpoint; 0 turns it off. The codec server answers them on CODEC_SERVER_PORT. */
  WORKER_OPS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  INGRESS_OPS_PORT: z.coerce.number().int().min(0).max(65535).default(9465),
  RELAY_OPS_PORT: z.coerce.number().int().min(0).max(65535).default(9466),
  /**
   * After SIGTERM/SIGINT a process finishes what it holds for at most this long (the worker its activities
   * and tasks, the ingress its batch, the relay its pass), then exits; keep it under the orchestrator's
   * kill timeout (Kubernetes: terminationGracePeriodSeconds, 30 by default).
   */
  SHUTDOWN_GRACE_SECONDS: z.coerce.number().int().min(1).max(3600).default(25),
  // ---- end of operations ---------------------------------------------------------------------------
  CODEC_SERVER_HOST: z.string().min(1).default('127.0.0.1'),
  CODEC_SERVER_PORT: z.coerce.number().int().min(1).max(65535).default(8888),
  /** Web UI origins allowed to call the codec server. */
  CODEC_CORS_ORIGINS: z
    .string()
    .default('http://127.0.0.1:8233,http://localhost:8233')
    .transform((value) => value.split(',').map((origin) => origin.trim()).filter(Boolean)),
  // ---- Payload codec and codec server security (issue 9; README "Payload encryption") -------------
  /** Accept workflow/Update/activity inputs that are not encrypted: only while migrating older histories. */
  PAYLOAD_ALLOW_PLAINTEXT: z.enum(['true', 'false']).default('false').transform((value) => value === 'true'),
  /**
   * How the codec server verifies its caller: `jwt` (a bearer token checked against CODEC_JWKS_URL or the
   * issuer's discovery document), `static` (CODEC_STATIC_TOKEN; loopback only) or `none` (loopback only).
   */
  CODEC_AUTH: z.enum(['jwt', 'static', 'none']).default('static'),
  /** URLs, checked when the codec server starts (empty means unset, as compose passes unset variables). */
  CODEC_JWKS_URL: z.string().optional(),
  CODEC_JWT_ISSUER: z.string().optional(),
  /** Audiences a token must carry one of (comma-separated). */
  CODEC_JWT_AUDIENCE: z
    .string()
    .default('')
    .transform((value) => value.split(',').map((audience) => audience.trim()).filter(Boolean)),
  CODEC_STATIC_TOKEN: z.string().min(32, 'must be at least 32 characters (openssl rand -base64 32)').optional(),
  /** Host header values the codec server answers (host or host:port, comma-separated); default: the loopback names. */
  CODEC_ALLOWED_HOSTS: z
    .string()
    .default('')
    .transform((value) => value.split(',').map((host) => host.trim().toLowerCase()).filter(Boolean)),
  CODEC_MAX_BODY_BYTES: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(4 * 1024 * 1024),
  /** POST /encode lets its callers make payloads the worker accepts; off unless set to true. */
  CODEC_ENABLE_ENCODE: z.enum(['true', 'false']).default('false').transform((value) => value === 'true'),
  // ---- end of payload codec and codec server security ----------------------------------------------
  // ---- Temporal connection security (README "Production settings: Temporal") -----------------------
  /** TLS to the Temporal frontend; unset means on when an API key or a TLS file is given. */
  TEMPORAL_TLS: z.enum(['true', 'false']).optional().transform((value) => (value === undefined ? undefined : value === 'true')),
  /** PEM files: the CA that signed the server's certificate, and the client certificate and key for mTLS. */
  TEMPORAL_TLS_CA_FILE: z.string().min(1).optional(),
  TEMPORAL_TLS_CERT_FILE: z.string().min(1).optional(),
  TEMPORAL_TLS_KEY_FILE: z.string().min(1).optional(),
  /** The name the server's certificate must carry when it differs from TEMPORAL_ADDRESS's host. */
  TEMPORAL_TLS_SERVER_NAME: z.string().min(1).optional(),
  /** Temporal Cloud API key (sent as a bearer token; implies TLS). */
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  // ---- end of Temporal connection security ---------------------------------------------------------
  // ---- Logs and traces (workers/logger.ts, workers/tracing.ts) -------------------------------------
  /** Level of the JSON log lines (pino): fatal, error, warn, info, debug, trace or silent. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** `otlp`: export traces over OTLP/HTTP; `none`: no tracing. Unset: on when an OTLP endpoint is set, off otherwise. */
  TRACES_EXPORTER: z.enum(['otlp', 'none']).optional(),
  /** The OTLP/HTTP collector (the standard variable; traces go to <endpoint>/v1/traces). Empty means unset. */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.preprocess((value) => (value === '' ? undefined : value), z.url({ protocol: /^https?$/ }).optional()),
  /** The full OTLP/HTTP traces URL, when it is not <endpoint>/v1/traces (the standard variable). */
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.preprocess((value) => (value === '' ? undefined : value), z.url({ protocol: /^https?$/ }).optional()),
  /** service.name of the spans; default: selfservice-worker, selfservice-ingress, selfservice-relay. */
  OTEL_SERVICE_NAME: z.preprocess((value) => (value === '' ? undefined : value), z.string().min(1).max(200).optional()),
  // ---- end of logs and traces ----------------------------------------------------------------------
});

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  return parsed.data;
}
