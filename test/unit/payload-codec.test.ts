import { defaultPayloadConverter } from '@temporalio/common';
import { ConfigError, loadConfig } from '../../workers/config';
import { codecFromConfig, EncryptionCodec, ENCRYPTED_ENCODING, keyIdOf, LEGACY_DEFAULT_KEY_ID, REFUSED_ENCODING_PREFIX, RefusedPayloadError } from '../../workers/payload-codec';

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

describe('payload key ids', () => {
  const payload = defaultPayloadConverter.toPayload({ email: 'alice@acme.example' });
  const keyIdIn = (encoded: { metadata?: Record<string, Uint8Array> | null }) => Buffer.from(encoded.metadata!['encryption-key-id']!).toString();
  const envFor = (fill: string, extra: Record<string, string> = {}) => ({ PAYLOAD_ENCRYPTION_KEY: key(fill).toString('base64'), ...extra });

  test("a key's default id is derived from the key: the same key always gets the same id, two keys never share one", () => {
    expect(keyIdOf(key('one'))).toMatch(/^k-[0-9a-f]{12}$/);
    expect(keyIdOf(key('one'))).toBe(keyIdOf(Buffer.from(key('one'))));
    expect(keyIdOf(key('two'))).not.toBe(keyIdOf(key('one')));
    // Nothing of the key shows in its id.
    expect(keyIdOf(key('one'))).not.toContain(key('one').toString('hex').slice(0, 6));
    const ids = new Set(Array.from({ length: 200 }, (_, index) => keyIdOf(Buffer.alloc(32, `key-${index}`))));
    expect(ids.size).toBe(200);
  });

  test('without PAYLOAD_ENCRYPTION_KEY_ID the derived id labels every payload; a configured id is kept', async () => {
    const derived = codecFromConfig(loadConfig(envFor('one')));
    expect(derived.keyId).toBe(keyIdOf(key('one')));
    const [encrypted] = await derived.encode([payload]);
    expect(keyIdIn(encrypted!)).toBe(keyIdOf(key('one')));
    // Any process with the same key derives the same id, and decodes it.
    const [decoded] = await codecFromConfig(loadConfig(envFor('one'))).decode([encrypted!]);
    expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual({ email: 'alice@acme.example' });

    const named = codecFromConfig(loadConfig(envFor('one', { PAYLOAD_ENCRYPTION_KEY_ID: 'prod-2026' })));
    expect(named.keyId).toBe('prod-2026');
    expect(keyIdIn((await named.encode([payload]))[0]!)).toBe('prod-2026');
    expect(() => loadConfig(envFor('one', { PAYLOAD_ENCRYPTION_KEY_ID: 'no spaces' }))).toThrow(/PAYLOAD_ENCRYPTION_KEY_ID/);
  });

  test('a payload of a foreign key is refused with an error naming its key id and the ids this process holds', async () => {
    // Two clones, each with its own local key and no configured id: the "both keys were called key-1".
    const mine = codecFromConfig(loadConfig(envFor('mine')), { onRefused: 'throw' });
    const theirs = codecFromConfig(loadConfig(envFor('theirs')));
    const [foreign] = await theirs.encode([payload]);
    const theirId = keyIdOf(key('theirs'));
    const myId = keyIdOf(key('mine'));
    await expect(mine.decode([foreign!])).rejects.toThrow(RefusedPayloadError);
    await expect(mine.decode([foreign!])).rejects.toThrow(`unknown key id "${theirId}"; this process holds "${myId}" (current), "${LEGACY_DEFAULT_KEY_ID}" (the former default id of "${myId}", decode only)`);
    await expect(mine.decode([foreign!])).rejects.toThrow(/another PAYLOAD_ENCRYPTION_KEY .*PAYLOAD_DECRYPTION_KEYS/);
    await expect(mine.decode([foreign!])).rejects.not.toThrow(/unable to authenticate/);

    // In the worker (refused payloads marked), converting the input fails with the same message: what the
    // workflow task or activity failure shows.
    const [marked] = await codecFromConfig(loadConfig(envFor('mine'))).decode([foreign!]);
    expect(() => defaultPayloadConverter.fromPayload(marked!)).toThrow(new RegExp(`refused by the payload codec: encrypted with unknown key id "${theirId}"; this process holds "${myId}" \\(current\\)`));
  });

  test("payloads labelled with the former default id key-1 still decode with the key that wrote them; another key's are refused, naming it", async () => {
    const legacyWriter = new EncryptionCodec(new Map([[LEGACY_DEFAULT_KEY_ID, key('one')]]), LEGACY_DEFAULT_KEY_ID);
    const [old] = await legacyWriter.encode([payload]);
    const [decoded] = await codecFromConfig(loadConfig(envFor('one'))).decode([old!]);
    expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual({ email: 'alice@acme.example' });
    // Decode only: new payloads carry the derived id.
    expect(keyIdIn((await codecFromConfig(loadConfig(envFor('one'))).encode([payload]))[0]!)).toBe(keyIdOf(key('one')));

    const other = codecFromConfig(loadConfig(envFor('two')), { onRefused: 'throw' });
    await expect(other.decode([old!])).rejects.toThrow(
      new RegExp(`does not decrypt with key "key-1": .*this process's key "${keyIdOf(key('two'))}" does not decrypt it, so another key encrypted it \\(give that key as key-1:<base64> in PAYLOAD_DECRYPTION_KEYS`),
    );
    // ... which is then how the old key stays readable after a rotation.
    const rotated = codecFromConfig(loadConfig(envFor('two', { PAYLOAD_DECRYPTION_KEYS: `key-1:${key('one').toString('base64')}` })), { onRefused: 'throw' });
    expect(defaultPayloadConverter.fromPayload((await rotated.decode([old!]))[0]!)).toEqual({ email: 'alice@acme.example' });
    // A configured id is the key's only id: no legacy alias.
    const named = codecFromConfig(loadConfig(envFor('one', { PAYLOAD_ENCRYPTION_KEY_ID: 'prod' })), { onRefused: 'throw' });
    await expect(named.decode([old!])).rejects.toThrow(/unknown key id "key-1"; this process holds "prod" \(current\)\./);
  });

  test('older keys may be listed without an id (derived) or with one; two different keys under one id stop the process', async () => {
    const [fromOne] = await codecFromConfig(loadConfig(envFor('one'))).encode([payload]);
    const rotated = codecFromConfig(loadConfig(envFor('two', { PAYLOAD_DECRYPTION_KEYS: ` ${key('one').toString('base64')} , old:${key('three').toString('base64')}` })), { onRefused: 'throw' });
    expect(defaultPayloadConverter.fromPayload((await rotated.decode([fromOne!]))[0]!)).toEqual({ email: 'alice@acme.example' });
    expect(rotated.describeKeys()).toBe(`"${keyIdOf(key('two'))}" (current), "${keyIdOf(key('one'))}", "old", "key-1" (the former default id of "${keyIdOf(key('two'))}", decode only)`);

    const clash = envFor('one', { PAYLOAD_ENCRYPTION_KEY_ID: 'k', PAYLOAD_DECRYPTION_KEYS: `k:${key('two').toString('base64')}` });
    expect(() => codecFromConfig(loadConfig(clash))).toThrow(/two different keys are given the id "k"/);
    expect(() => codecFromConfig(loadConfig(envFor('one', { PAYLOAD_DECRYPTION_KEYS: 'a:b:c' })))).toThrow(/id:base64key pairs or bare base64 keys/);
    expect(() => codecFromConfig(loadConfig(envFor('one', { PAYLOAD_DECRYPTION_KEYS: `bad id:${key('two').toString('base64')}` })))).toThrow(/key id "bad id"/);
  });
});
