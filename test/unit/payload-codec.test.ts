import { defaultPayloadConverter } from '@temporalio/common';
import { ConfigError, loadConfig } from '../../workers/config';
import { codecFromConfig, EncryptionCodec, ENCRYPTED_ENCODING } from '../../workers/payload-codec';

const key = (fill: string) => Buffer.alloc(32, fill);

describe('payload encryption', () => {
  const codec = new EncryptionCodec(new Map([['k1', key('one')]]), 'k1');
  const payload = defaultPayloadConverter.toPayload({ email: 'alice@acme.example', comment: 'for the offsite' });

  test('an encrypted payload names its encoding and key, hides its content, and decodes to the original', async () => {
    const [encrypted] = await codec.encode([payload]);
    expect(Buffer.from(encrypted!.metadata!.encoding!).toString()).toBe(ENCRYPTED_ENCODING);
    expect(Buffer.from(encrypted!.metadata!['encryption-key-id']!).toString()).toBe('k1');
    expect(Buffer.from(encrypted!.data!).toString('latin1')).not.toContain('alice@acme.example');
    const [decoded] = await codec.decode([encrypted!]);
    expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual({ email: 'alice@acme.example', comment: 'for the offsite' });
  });

  test('a payload that was changed in storage is refused', async () => {
    const [encrypted] = await codec.encode([payload]);
    const data = Buffer.from(encrypted!.data!);
    data[20] = (data[20] ?? 0) ^ 0xff;
    await expect(codec.decode([{ ...encrypted!, data }])).rejects.toThrow();
  });

  test('after a key rotation old payloads still decode; unencrypted ones pass through', async () => {
    const [old] = await codec.encode([payload]);
    const rotated = new EncryptionCodec(new Map([['k1', key('one')], ['k2', key('two')]]), 'k2');
    const [fromOld] = await rotated.decode([old!]);
    expect(defaultPayloadConverter.fromPayload(fromOld!)).toEqual({ email: 'alice@acme.example', comment: 'for the offsite' });
    await expect(rotated.decode([payload])).resolves.toEqual([payload]);
    await expect(new EncryptionCodec(new Map([['k2', key('two')]]), 'k2').decode([old!])).rejects.toThrow(/unknown key id "k1"/);
  });

  test('a missing or malformed key stops the process with the variable named', () => {
    expect(() => codecFromConfig(loadConfig({}))).toThrow(ConfigError);
    expect(() => codecFromConfig(loadConfig({}))).toThrow(/PAYLOAD_ENCRYPTION_KEY is required/);
    expect(() => codecFromConfig(loadConfig({ PAYLOAD_ENCRYPTION_KEY: 'c2hvcnQ=' }))).toThrow(/must be 32 bytes/);
  });
});
