import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { ConfigError, type Config } from './config';

/**
 * Encrypts every payload Temporal stores (workflow inputs, activity results, memos' values, ...) with
 * AES-256-GCM, so workflow histories hold no personal data in clear. The key id travels with each
 * payload so keys can be rotated (old ids stay readable).
 *
 * AES-GCM also authenticates: only a holder of the key can make a payload that decodes. So a payload
 * that is not encrypted, or does not decrypt, is refused: someone who can reach Temporal but does not
 * hold the key cannot start a workflow, send an Update or answer an activity with inputs of their
 * choosing. In the worker and the clients (`codecFromConfig`, `onRefused: 'mark'`) a refused payload
 * becomes an empty payload whose encoding states the refusal; no payload converter knows that encoding,
 * so converting it fails with the reason: an Update is rejected before it is accepted (the SDK rejects
 * an Update whose input cannot be converted) and the workflow goes on; a workflow start or a signal
 * fails its workflow task and no workflow code runs. (Throwing here instead would fail the whole
 * workflow task, and Temporal would deliver the forged Update again with every retry.)
 * PAYLOAD_ALLOW_PLAINTEXT=true lets unencrypted payloads through, only while migrating histories written
 * before encryption. Search attributes and headers never pass through codecs (the SDK skips them).
 * Operators read payloads in the Temporal Web UI through the codec server (workers/codec-server.ts),
 * which uses this codec with `onRefused: 'throw'` and shows unencrypted payloads as they are.
 */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
/** How the encoding of a refused payload begins; the reason follows. */
export const REFUSED_ENCODING_PREFIX = 'refused by the payload codec: ';
const IV_BYTES = 12;
const TAG_BYTES = 16;

const utf8 = (text: string) => Buffer.from(text, 'utf8');

/** A payload that is not encrypted, or does not decrypt: someone without the key may have written it. */
export class RefusedPayloadError extends Error {
  override readonly name = 'RefusedPayloadError';
}

export interface EncryptionCodecOptions {
  /** Pass payloads without our encoding through unchanged (PAYLOAD_ALLOW_PLAINTEXT, for a migration). */
  allowPlaintext?: boolean;
  /** A refused payload: `throw` RefusedPayloadError (default), or `mark` it (see above). */
  onRefused?: 'throw' | 'mark';
}

export class EncryptionCodec implements PayloadCodec {
  private readonly allowPlaintext: boolean;
  private readonly onRefused: 'throw' | 'mark';

  constructor(
    private readonly keys: ReadonlyMap<string, Buffer>,
    private readonly currentKeyId: string,
    options: EncryptionCodecOptions = {},
  ) {
    if (!keys.has(currentKeyId)) throw new ConfigError(`no payload encryption key with id ${currentKeyId}`);
    this.allowPlaintext = options.allowPlaintext ?? false;
    this.onRefused = options.onRefused ?? 'throw';
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
      if (encoding !== ENCRYPTED_ENCODING) {
        if (this.allowPlaintext) return payload;
        return this.refuse(
          `not encrypted (encoding "${encoding || 'none'}"); inputs must be encrypted with the payload key, ` +
            'PAYLOAD_ALLOW_PLAINTEXT=true accepts unencrypted ones only while migrating histories written before encryption',
        );
      }
      const keyId = Buffer.from(payload.metadata?.['encryption-key-id'] ?? new Uint8Array()).toString('utf8');
      const key = this.keys.get(keyId);
      if (!key) return this.refuse(`encrypted with unknown key id "${keyId}" (PAYLOAD_DECRYPTION_KEYS keeps older keys readable)`);
      const sealed = Buffer.from(payload.data ?? new Uint8Array());
      try {
        if (sealed.length < IV_BYTES + TAG_BYTES) throw new Error('too short');
        const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES));
        decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
        const plain = Buffer.concat([decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)), decipher.final()]);
        return temporal.api.common.v1.Payload.decode(plain) as Payload;
      } catch {
        return this.refuse(`does not decrypt with key "${keyId}" (changed, or not made with the key)`);
      }
    });
  }

  private refuse(reason: string): Payload {
    if (this.onRefused === 'throw') throw new RefusedPayloadError(`refused a payload: ${reason}`);
    return { metadata: { encoding: utf8(`${REFUSED_ENCODING_PREFIX}${reason}`) }, data: new Uint8Array() };
  }
}

/** A key is 32 random bytes, base64: `openssl rand -base64 32`. */
export function parseKey(base64: string, variable: string): Buffer {
  const key = Buffer.from(base64, 'base64');
  if (key.length !== 32) throw new ConfigError(`${variable} must be 32 bytes, base64-encoded (openssl rand -base64 32); it decodes to ${key.length} bytes`);
  return key;
}

/** The codec of the worker and the clients: refused payloads are marked (see above) unless told otherwise. */
export function codecFromConfig(config: Config, options: EncryptionCodecOptions = {}): EncryptionCodec {
  if (!config.PAYLOAD_ENCRYPTION_KEY) {
    throw new ConfigError('PAYLOAD_ENCRYPTION_KEY is required by every process that talks to Temporal: 32 bytes, base64 (openssl rand -base64 32)');
  }
  const keys = new Map([[config.PAYLOAD_ENCRYPTION_KEY_ID, parseKey(config.PAYLOAD_ENCRYPTION_KEY, 'PAYLOAD_ENCRYPTION_KEY')]]);
  for (const entry of config.PAYLOAD_DECRYPTION_KEYS) {
    const [id, key] = entry.split(':');
    if (!id || !key) throw new ConfigError('PAYLOAD_DECRYPTION_KEYS must list id:base64key pairs, separated by commas');
    keys.set(id, parseKey(key, `PAYLOAD_DECRYPTION_KEYS (${id})`));
  }
  return new EncryptionCodec(keys, config.PAYLOAD_ENCRYPTION_KEY_ID, {
    allowPlaintext: options.allowPlaintext ?? config.PAYLOAD_ALLOW_PLAINTEXT,
    onRefused: options.onRefused ?? 'mark',
  });
}

export function dataConverterFor(config: Config) {
  return { payloadCodecs: [codecFromConfig(config)] };
}
