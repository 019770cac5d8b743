import { randomUUID } from 'node:crypto';
import { DeadLetterHeaders } from '../../events/dead-letters';
import { startTestBackend, type TestBackend } from '../support/backend';
import { resultFor, sendCommand, TopicProbe } from '../support/kafka-probe';
import { uniqueId } from '../support/test-config';

/**
 * Kafka -> ingress -> command catalog -> one transaction (PostgreSQL) -> outbox -> relay -> Kafka, with
 * every part real: the broker, the Temporal server, the database.
 */
describe('walking skeleton: a directory command through every real part', () => {
  let backend: TestBackend;
  let probe: TopicProbe;

  beforeAll(async () => {
    backend = await startTestBackend();
    probe = await TopicProbe.start(backend.kafka, [backend.topics.commandResults, backend.topics.deadLetters]);
  });

  afterAll(async () => {
    await probe?.stop();
    await backend?.stop();
  });

  const orgUpserted = 'selfservice.directory.org-upserted.v1';

  test('an org-upserted event writes the org row and announces one accepted result', async () => {
    const orgId = uniqueId('org');
    const commandId = await sendCommand(backend.producer, backend.topics.directory, orgUpserted, {
      orgId,
      name: 'Acme Corp',
      emailDomains: ['acme.example'],
      features: { PERSONAL_APP_MIGRATION: true },
    });

    const result = await probe.waitFor(resultFor(commandId), `the result of ${commandId}`);
    expect(result.type).toBe('selfservice.command.accepted.v1');
    expect(result.data).toMatchObject({ commandId, commandType: orgUpserted, orgId });
    expect(result.key).toBe(orgId);
    expect(result.headers.ce_id).toBe(`${commandId}:result`);

    const org = await backend.db.org.findUniqueOrThrow({ where: { id: orgId } });
    expect(org).toMatchObject({ name: 'Acme Corp', emailDomains: ['acme.example'], personalAppMigration: true });

    // Applied by the ingress in one transaction, recorded once in the ledger; no workflow of its own.
    await expect(backend.db.processedCommand.findUniqueOrThrow({ where: { commandId } })).resolves.toMatchObject({ outcome: 'ACCEPTED', commandType: orgUpserted });
    await expect(backend.client.workflow.getHandle(`command-${commandId}`).describe()).rejects.toThrow(/not found/);
  });

  test('a malformed record goes to the dead-letter topic and the consumer keeps going', async () => {
    const badId = randomUUID();
    await backend.producer.send({
      topic: backend.topics.directory,
      messages: [
        {
          key: 'x',
          value: Buffer.from('{"orgId": '),
          headers: { ce_specversion: '1.0', ce_id: badId, ce_source: 'urn:test', ce_type: orgUpserted },
        },
      ],
    });
    await backend.producer.send({ topic: backend.topics.directory, messages: [{ key: 'x', value: Buffer.from('no headers at all') }] });

    const dead = await probe.waitFor(
      (record) => record.topic === backend.topics.deadLetters && record.headers.ce_id === badId,
      'the malformed record on the DLQ',
    );
    expect(dead.value?.toString()).toBe('{"orgId": ');
    expect(dead.headers[DeadLetterHeaders.error]).toMatch(/^MALFORMED_EVENT: the body is not valid JSON/);
    expect(dead.headers[DeadLetterHeaders.sourceTopic]).toBe(backend.topics.directory);
    await probe.waitFor(
      (record) => record.topic === backend.topics.deadLetters && record.value?.toString() === 'no headers at all',
      'the header-less record on the DLQ',
    );
    const rejected = await probe.waitFor(resultFor(badId), 'the rejection of the malformed command');
    expect(rejected.data).toMatchObject({ code: 'MALFORMED_EVENT' });

    // The consumer is still running: a valid command after the bad ones is processed.
    const orgId = uniqueId('org');
    const commandId = await sendCommand(backend.producer, backend.topics.directory, orgUpserted, {
      orgId,
      name: 'After the bad ones',
      emailDomains: ['after.example'],
    });
    await probe.waitFor(resultFor(commandId), 'the result of the command after the malformed ones');
    await expect(backend.db.org.count({ where: { id: orgId } })).resolves.toBe(1);
  });

  test('the same ce_id delivered twice has one effect and one result', async () => {
    const orgId = uniqueId('org');
    const id = randomUUID();
    const data = { orgId, name: 'Twice', emailDomains: ['twice.example'] };
    await sendCommand(backend.producer, backend.topics.directory, orgUpserted, data, { id });
    await sendCommand(backend.producer, backend.topics.directory, orgUpserted, data, { id });
    // A later command on the same partition (same key) proves both copies were consumed.
    const marker = await sendCommand(backend.producer, backend.topics.directory, orgUpserted, { ...data, orgId, name: 'Twice' });
    await probe.waitFor(resultFor(marker), 'the marker command');

    expect(probe.matching(resultFor(id))).toHaveLength(1);
    await expect(backend.db.processedCommand.count({ where: { commandId: id } })).resolves.toBe(1);
    const org = await backend.db.org.findUniqueOrThrow({ where: { id: orgId } });
    expect(org.name).toBe('Twice');
  });

  test('the same ce_id with other content gets a conflict of its own that carries nothing of the first', async () => {
    const orgId = uniqueId('org');
    const id = randomUUID();
    const data = { orgId, name: 'First', emailDomains: ['first.example'] };
    await sendCommand(backend.producer, backend.topics.directory, orgUpserted, data, { id });
    await sendCommand(backend.producer, backend.topics.directory, orgUpserted, { ...data, name: 'Second' }, { id });
    const otherOrg = uniqueId('org');
    // Same key, so the same partition: it is consumed after the first (across partitions the first to arrive owns the id).
    await sendCommand(backend.producer, backend.topics.directory, orgUpserted, { ...data, orgId: otherOrg }, { id, key: orgId });
    const marker = await sendCommand(backend.producer, backend.topics.directory, orgUpserted, { ...data, name: 'First' });
    await probe.waitFor(resultFor(marker), 'the marker command');
    await probe.waitFor((record) => resultFor(id)(record) && record.data.orgId === otherOrg, 'the conflict from the other org');

    const results = probe.matching(resultFor(id));
    expect(results.map((result) => result.data.code ?? 'ACCEPTED').sort()).toEqual(['ACCEPTED', 'COMMAND_ID_CONFLICT', 'COMMAND_ID_CONFLICT']);
    expect(new Set(results.map((result) => result.id)).size).toBe(3);
    for (const conflict of results.filter((result) => result.data.code === 'COMMAND_ID_CONFLICT')) {
      expect(JSON.stringify(conflict.data)).not.toContain('First');
    }
    const org = await backend.db.org.findUniqueOrThrow({ where: { id: orgId } });
    expect(org.name).toBe('First');
    await expect(backend.db.org.count({ where: { id: otherOrg } })).resolves.toBe(0);
  });
});
