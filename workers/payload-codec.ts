import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { ConfigError, type Config } from './config';

/**
 * Encrypts every payload Temporal stores (workflow inputs, activity results, memos' values, ...) with
 * AES-256-GCM, so workflow histories hold no personal data in clear. The key id travels with each
 * payload so keys can be rotated (old ids stay readable). Unless PAYLOAD_ENCRYPTION_KEY_ID names it, a
 * key's id is derived from the key (`keyIdOf`), so two different keys never share an id: a payload that
 * another key encrypted (a process of another clone or deployment on the same task queue, a key that
 * changed) is refused with an error naming its key id and the ids this process holds, instead of failing
 * to authenticate under an id both keys claim.
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

/** The id every key had by default before ids were derived from the keys. */
export const LEGACY_DEFAULT_KEY_ID = 'key-1';
const KEY_ID_LABEL = 'selfservice payload encryption key id v1';

/**
 * The default id of a key: `k-` and the first 12 hex digits of an HMAC-SHA-256 of a fixed label under
 * the key. The same key always gets the same id (every process that holds it agrees), two different
 * keys practically never do (48 bits), and the id reveals nothing usable about the key.
 */
export function keyIdOf(key: Buffer): string {
  return `k-${createHmac('sha256', key).update(KEY_ID_LABEL).digest('hex').slice(0, 12)}`;
}

/** A payload that is not encrypted, or does not decrypt: someone without the key may have written it. */
export class RefusedPayloadError extends Error {
  override readonly name = 'RefusedPayloadError';
}

export interface EncryptionCodecOptions {
  /** Pass payloads without our encoding through unchanged (PAYLOAD_ALLOW_PLAINTEXT, for a migration). */
  allowPlaintext?: boolean;
  /** A refused payload: `throw` RefusedPayloadError (default), or `mark` it (see above). */
  onRefused?: 'throw' | 'mark';
  /**
   * Other ids a key answers to when decoding only (never when encoding): other id -> id in `keys`. The
   * configured key answers to LEGACY_DEFAULT_KEY_ID when its own id is derived (see codecFromConfig).
   */
  decodeAliases?: ReadonlyMap<string, string>;
}

export class EncryptionCodec implements PayloadCodec {
  private readonly allowPlaintext: boolean;
  private readonly onRefused: 'throw' | 'mark';
  private readonly decodeAliases: ReadonlyMap<string, string>;

  constructor(
    private readonly keys: ReadonlyMap<string, Buffer>,
    private readonly currentKeyId: string,
    options: EncryptionCodecOptions = {},
  ) {
    if (!keys.has(currentKeyId)) throw new ConfigError(`no payload encryption key with id ${currentKeyId}`);
    this.allowPlaintext = options.allowPlaintext ?? false;
    this.onRefused = options.onRefused ?? 'throw';
    this.decodeAliases = new Map([...(options.decodeAliases ?? new Map<string, string>())].filter(([alias, id]) => !keys.has(alias) && keys.has(id)));
  }

  /** The id written with every payload this codec encrypts. */
  get keyId(): string {
    return this.currentKeyId;
  }

  /** The ids this codec decodes, for messages: `"k-…" (current), "old", "key-1" (former default id of "k-…", decode only)`. */
  describeKeys(): string {
    const ids = [...this.keys.keys()].map((id) => (id === this.currentKeyId ? `"${id}" (current)` : `"${id}"`));
    const aliases = [...this.decodeAliases].map(([alias, id]) => `"${alias}" (${alias === LEGACY_DEFAULT_KEY_ID ? 'the former default id' : 'another id'} of "${id}", decode only)`);
    return [...ids, ...aliases].join(', ');
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
      const aliasOf = this.keys.has(keyId) ? undefined : this.decodeAliases.get(keyId);
      const key = this.keys.get(aliasOf ?? keyId);
      if (!key) {
        return this.refuse(
          `encrypted with unknown key id "${keyId}"; this process holds ${this.describeKeys()}. ` +
            'Another key encrypted it: a process with another PAYLOAD_ENCRYPTION_KEY (another clone or deployment on the same ' +
            'Temporal namespace and task queue?), or a rotated key missing from PAYLOAD_DECRYPTION_KEYS',
        );
      }
      const sealed = Buffer.from(payload.data ?? new Uint8Array());
      try {
        if (sealed.length < IV_BYTES + TAG_BYTES) throw new Error('too short');
        const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES));
        decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
        const plain = Buffer.concat([decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)), decipher.final()]);
        return temporal.api.common.v1.Payload.decode(plain) as Payload;
      } catch {
        if (aliasOf) {
          return this.refuse(
            `does not decrypt with key "${keyId}": "${keyId}" is the id every key had by default before ids were derived from ` +
              `the key, and this process's key "${aliasOf}" does not decrypt it, so another key encrypted it ` +
              `(give that key as ${keyId}:<base64> in PAYLOAD_DECRYPTION_KEYS to read it; this process holds ${this.describeKeys()})`,
          );
        }
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
  const current = parseKey(config.PAYLOAD_ENCRYPTION_KEY, 'PAYLOAD_ENCRYPTION_KEY');
  const currentId = config.PAYLOAD_ENCRYPTION_KEY_ID ?? keyIdOf(current);
  const keys = new Map([[currentId, current]]);
  for (const entry of config.PAYLOAD_DECRYPTION_KEYS) {
    // `id:base64`, or a bare `base64` (base64 has no colon) whose id is derived from the key.
    const parts = entry.split(':');
    if (parts.length > 2 || parts.some((part) => !part)) throw new ConfigError('PAYLOAD_DECRYPTION_KEYS must list id:base64key pairs or bare base64 keys, separated by commas');
    const key = parseKey(parts.at(-1)!, `PAYLOAD_DECRYPTION_KEYS (${parts.length === 2 ? parts[0] : 'a key without id'})`);
    const id = parts.length === 2 ? parts[0]! : keyIdOf(key);
    if (!/^[A-Za-z0-9._-]+$/.test(id)) throw new ConfigError(`PAYLOAD_DECRYPTION_KEYS: key id "${id}" may hold only letters, digits, ".", "_" and "-"`);
    const known = keys.get(id);
    if (known && !known.equals(key)) throw new ConfigError(`PAYLOAD_DECRYPTION_KEYS: two different keys are given the id "${id}"; every key needs an id of its own`);
    keys.set(id, key);
  }
  // Payloads written before ids were derived carry the former default id: a key without a configured id
  // still reads them (decode only; a payload another key wrote under that id is refused, naming it).
  const decodeAliases = new Map<string, string>(config.PAYLOAD_ENCRYPTION_KEY_ID ? [] : [[LEGACY_DEFAULT_KEY_ID, currentId]]);
  return new EncryptionCodec(keys, currentId, {
    allowPlaintext: options.allowPlaintext ?? config.PAYLOAD_ALLOW_PLAINTEXT,
    onRefused: options.onRefused ?? 'mark',
    decodeAliases,
  });
}

export function dataConverterFor(config: Config) {
  return { payloadCodecs: [codecFromConfig(config)] };
}
