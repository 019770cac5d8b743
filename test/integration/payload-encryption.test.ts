import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Client, Connection } from '@temporalio/client';
import { payloadToJSON } from '@temporalio/common/lib/proto-utils';
import { createCodecServer } from '../../workers/codec-server';
import { codecFromConfig, ENCRYPTED_ENCODING } from '../../workers/payload-codec';
import { startTestBackend, type TestBackend } from '../support/backend';
import { CommandClient } from '../support/commands';
import { TopicProbe } from '../support/kafka-probe';
import { uniqueId } from '../support/test-config';

/** What an operator and an attacker with database access see of a workflow's payloads. */
describe('encrypted workflow payloads', () => {
  let backend: TestBackend;
  let probe: TopicProbe;
  let codecServer: Server;
  let codecUrl: string;

  beforeAll(async () => {
    backend = await startTestBackend();
    probe = await TopicProbe.start(backend.kafka, [backend.topics.commandResults]);
    codecServer = createCodecServer(codecFromConfig(backend.config), ['http://127.0.0.1:8233']);
    await new Promise<void>((resolve) => codecServer.listen(0, '127.0.0.1', resolve));
    codecUrl = `http://127.0.0.1:${(codecServer.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => codecServer?.close(resolve));
    await probe?.stop();
    await backend?.stop();
  });

  test('the history holds only ciphertext, and the codec endpoint gives operators the clear text', async () => {
    const orgId = uniqueId('org');
    const result = await new CommandClient(backend, probe).directory('org-upserted', { orgId, name: 'Secret Org Name', emailDomains: ['secret.example'] });
    const workflowId = `command-${String(result.data.commandId)}`;
    await backend.client.workflow.getHandle(workflowId).result();

    // A client without the key sees what Temporal stores.
    const connection = await Connection.connect({ address: backend.config.TEMPORAL_ADDRESS });
    const history = await new Client({ connection, namespace: backend.config.TEMPORAL_NAMESPACE }).workflow.getHandle(workflowId).fetchHistory();
    await connection.close();
    const input = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    expect(Buffer.from(input!.metadata!.encoding!).toString()).toBe(ENCRYPTED_ENCODING);
    expect(JSON.stringify(history)).not.toContain('Secret Org Name');

    // The Web UI asks the codec endpoint (CORS for the UI's origin only).
    const preflight = await fetch(`${codecUrl}/decode`, { method: 'OPTIONS', headers: { origin: 'http://127.0.0.1:8233' } });
    expect(preflight.headers.get('access-control-allow-origin')).toBe('http://127.0.0.1:8233');
    const stranger = await fetch(`${codecUrl}/decode`, { method: 'OPTIONS', headers: { origin: 'http://evil.example' } });
    expect(stranger.headers.get('access-control-allow-origin')).toBeNull();
    const response = await fetch(`${codecUrl}/decode`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'http://127.0.0.1:8233' },
      body: JSON.stringify({ payloads: [payloadToJSON(input!)] }),
    });
    expect(response.status).toBe(200);
    const decoded = (await response.json()) as { payloads: { data: string }[] };
    expect(Buffer.from(decoded.payloads[0]!.data, 'base64').toString()).toContain('Secret Org Name');

    const bad = await fetch(`${codecUrl}/decode`, { method: 'POST', body: '{"nope":1}' });
    expect(bad.status).toBe(400);
  });
});
