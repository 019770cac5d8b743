import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Client, Connection } from '@temporalio/client';
import { payloadToJSON } from '@temporalio/common/lib/proto-utils';
import { createCodecServer } from '../../workers/codec-server';
import { codecFromConfig, ENCRYPTED_ENCODING } from '../../workers/payload-codec';
import { startTestBackend, type TestBackend } from '../support/backend';
import { CommandClient, seedOrg } from '../support/commands';
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
    // An auto-granted request whose comment is the secret: it is in the workflow's input and result.
    const commands = new CommandClient(backend, probe);
    const org = await seedOrg(commands, { users: ['requester'] });
    const appId = uniqueId('app');
    await commands.directory('org-app-upserted', { orgId: org.orgId, appId, label: 'Expenses', signOnMode: 'SAML', status: 'ACTIVE' });
    await commands.accepted('adminCommands', 'selfservice.app.self-service-configured.v1', {
      orgId: org.orgId,
      actorId: org.superAdminId,
      appId,
      config: { requestsEnabled: true, approvalRequired: false },
    });
    const result = await commands.accepted('userRequests', 'selfservice.app.requested.v1', { orgId: org.orgId, userId: org.user('requester'), appId, comment: 'Secret Org Name' });
    const workflowId = String(result.data.workflowId);
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
