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
  DATABASE_URL: z
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
  PAYLOAD_ENCRYPTION_KEY_ID: z.string().regex(/^[A-Za-z0-9._-]+$/).default('key-1'),
  /** Older keys still needed to read existing histories after a rotation: `id:base64,id:base64`. */
  PAYLOAD_DECRYPTION_KEYS: z
    .string()
    .default('')
    .transform((value) => value.split(',').map((entry) => entry.trim()).filter(Boolean)),
  /** The largest inbound record (key + value + headers) accepted, in bytes; larger ones are dead-lettered. */
  MAX_EVENT_BYTES: z.coerce.number().int().min(4096).max(1_000_000).default(Limits.eventBytes),
  CODEC_SERVER_HOST: z.string().min(1).default('127.0.0.1'),
  CODEC_SERVER_PORT: z.coerce.number().int().min(1).max(65535).default(8888),
  /** Web UI origins allowed to call the codec server. */
  CODEC_CORS_ORIGINS: z
    .string()
    .default('http://127.0.0.1:8233,http://localhost:8233')
    .transform((value) => value.split(',').map((origin) => origin.trim()).filter(Boolean)),
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
