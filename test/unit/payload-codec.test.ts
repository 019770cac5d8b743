import { defaultPayloadConverter } from '@temporalio/common';
import { ConfigError, loadConfig } from '../../workers/config';
import { codecFromConfig, EncryptionCodec, ENCRYPTED_ENCODING, REFUSED_ENCODING_PREFIX, RefusedPayloadError } from '../../workers/payload-codec';

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

  test('after a key rotation old payloads still decode', async () => {
    const [old] = await codec.encode([payload]);
    const rotated = new EncryptionCodec(new Map([['k1', key('one')], ['k2', key('two')]]), 'k2');
    const [fromOld] = await rotated.decode([old!]);
    expect(defaultPayloadConverter.fromPayload(fromOld!)).toEqual({ email: 'alice@acme.example', comment: 'for the offsite' });
    await expect(new EncryptionCodec(new Map([['k2', key('two')]]), 'k2').decode([old!])).rejects.toThrow(/unknown key id "k1"/);
  });

  test('an unencrypted payload is refused, naming the switch; with PAYLOAD_ALLOW_PLAINTEXT=true it passes through', async () => {
    await expect(codec.decode([payload])).rejects.toThrow(RefusedPayloadError);
    await expect(codec.decode([payload])).rejects.toThrow(/not encrypted \(encoding "json\/plain"\).*PAYLOAD_ALLOW_PLAINTEXT=true/);
    // One plaintext payload among encrypted ones is enough to refuse the lot.
    const [encrypted] = await codec.encode([payload]);
    await expect(codec.decode([encrypted!, payload])).rejects.toThrow(RefusedPayloadError);
    await expect(codec.decode([{ data: Buffer.from('{}') }])).rejects.toThrow(/encoding "none"/);
    // Our encoding on data that was not made with the key is not enough: the data must decrypt.
    await expect(codec.decode([{ ...payload, metadata: { ...payload.metadata, encoding: Buffer.from(ENCRYPTED_ENCODING), 'encryption-key-id': Buffer.from('k1') } }])).rejects.toThrow(/does not decrypt/);

    const migrating = new EncryptionCodec(new Map([['k1', key('one')]]), 'k1', { allowPlaintext: true });
    await expect(migrating.decode([payload])).resolves.toEqual([payload]);
    expect(() => loadConfig({ PAYLOAD_ALLOW_PLAINTEXT: 'yes' })).toThrow(/PAYLOAD_ALLOW_PLAINTEXT/);
  });

  test('in the worker and the clients a refused payload is marked: converting it fails with the reason, and nothing of it is kept', async () => {
    const env = { PAYLOAD_ENCRYPTION_KEY: key('one').toString('base64'), PAYLOAD_ENCRYPTION_KEY_ID: 'k1' };
    const workerCodec = codecFromConfig(loadConfig(env));
    const [marked] = await workerCodec.decode([payload]);
    expect(Buffer.from(marked!.metadata!.encoding!).toString()).toMatch(new RegExp(`^${REFUSED_ENCODING_PREFIX}not encrypted`));
    expect(marked!.data).toHaveLength(0);
    expect(() => defaultPayloadConverter.fromPayload(marked!)).toThrow(/Unknown encoding: refused by the payload codec: not encrypted .*PAYLOAD_ALLOW_PLAINTEXT=true/);
    // Encrypted payloads among refused ones still decode; a changed one or one of an unknown key is refused too.
    const [good] = await workerCodec.encode([payload]);
    const changed = { ...good!, data: Buffer.from(good!.data!).fill(0, 20, 30) };
    const [fromOld] = await codec.encode([payload]);
    const other = new EncryptionCodec(new Map([['k9', key('nine')]]), 'k9');
    const [unknownKey] = await other.encode([payload]);
    const decoded = await workerCodec.decode([good!, changed, unknownKey!, fromOld!]);
    expect(defaultPayloadConverter.fromPayload(decoded[0]!)).toEqual({ email: 'alice@acme.example', comment: 'for the offsite' });
    expect(() => defaultPayloadConverter.fromPayload(decoded[1]!)).toThrow(/does not decrypt with key "k1"/);
    expect(() => defaultPayloadConverter.fromPayload(decoded[2]!)).toThrow(/unknown key id "k9"/);
    expect(defaultPayloadConverter.fromPayload(decoded[3]!)).toEqual({ email: 'alice@acme.example', comment: 'for the offsite' });

    await expect(codecFromConfig(loadConfig({ ...env, PAYLOAD_ALLOW_PLAINTEXT: 'true' })).decode([payload])).resolves.toEqual([payload]);
    await expect(codecFromConfig(loadConfig(env), { onRefused: 'throw' }).decode([payload])).rejects.toThrow(RefusedPayloadError);
  });

  test('a missing or malformed key stops the process with the variable named', () => {
    expect(() => codecFromConfig(loadConfig({}))).toThrow(ConfigError);
    expect(() => codecFromConfig(loadConfig({}))).toThrow(/PAYLOAD_ENCRYPTION_KEY is required/);
    expect(() => codecFromConfig(loadConfig({ PAYLOAD_ENCRYPTION_KEY: 'c2hvcnQ=' }))).toThrow(/must be 32 bytes/);
  });
});
