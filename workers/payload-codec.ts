import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { ConfigError, type Config } from './config';

/**
 * Encrypts every payload Temporal stores (workflow inputs, activity results, memos' values, ...) with
 * AES-256-GCM, so workflow histories hold no personal data in clear. The key id travels with each
 * payload so keys can be rotated (old ids stay readable). Payloads without our encoding pass through
 * unchanged, so histories written before encryption still replay. Operators read payloads in the
 * Temporal Web UI through the codec server (workers/codec-server.ts), which uses this same codec.
 */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
const IV_BYTES = 12;
const TAG_BYTES = 16;

const utf8 = (text: string) => Buffer.from(text, 'utf8');

export class EncryptionCodec implements PayloadCodec {
  constructor(
    private readonly keys: ReadonlyMap<string, Buffer>,
    private readonly currentKeyId: string,
  ) {
    if (!keys.has(currentKeyId)) throw new ConfigError(`no payload encryption key with id ${currentKeyId}`);
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const key = this.keys.get(this.currentKeyId)!;
    return payloads.map((payload) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const plain = temporal.api.common.v1.Payload.encode(payload).finish();
      const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return { metadata: { encoding: utf8(ENCRYPTED_ENCODING), 'encryption-key-id': utf8(this.currentKeyId) }, data: sealed };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const encoding = payload.metadata?.encoding ? Buffer.from(payload.metadata.encoding).toString('utf8') : '';
      if (encoding !== ENCRYPTED_ENCODING) return payload;
      const keyId = Buffer.from(payload.metadata?.['encryption-key-id'] ?? new Uint8Array()).toString('utf8');
      const key = this.keys.get(keyId);
      if (!key) throw new Error(`payload encrypted with unknown key id "${keyId}"`);
      const sealed = Buffer.from(payload.data ?? new Uint8Array());
      const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES));
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      const plain = Buffer.concat([decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)), decipher.final()]);
      return temporal.api.common.v1.Payload.decode(plain) as Payload;
    });
  }
}

/** A key is 32 random bytes, base64: `openssl rand -base64 32`. */
export function parseKey(base64: string, variable: string): Buffer {
  const key = Buffer.from(base64, 'base64');
  if (key.length !== 32) throw new ConfigError(`${variable} must be 32 bytes, base64-encoded (openssl rand -base64 32); it decodes to ${key.length} bytes`);
  return key;
}

export function codecFromConfig(config: Config): EncryptionCodec {
  if (!config.PAYLOAD_ENCRYPTION_KEY) {
    throw new ConfigError('PAYLOAD_ENCRYPTION_KEY is required by every process that talks to Temporal: 32 bytes, base64 (openssl rand -base64 32)');
  }
  const keys = new Map([[config.PAYLOAD_ENCRYPTION_KEY_ID, parseKey(config.PAYLOAD_ENCRYPTION_KEY, 'PAYLOAD_ENCRYPTION_KEY')]]);
  for (const entry of config.PAYLOAD_DECRYPTION_KEYS) {
    const [id, key] = entry.split(':');
    if (!id || !key) throw new ConfigError('PAYLOAD_DECRYPTION_KEYS must list id:base64key pairs, separated by commas');
    keys.set(id, parseKey(key, `PAYLOAD_DECRYPTION_KEYS (${id})`));
  }
  return new EncryptionCodec(keys, config.PAYLOAD_ENCRYPTION_KEY_ID);
}

export function dataConverterFor(config: Config) {
  return { payloadCodecs: [codecFromConfig(config)] };
}
