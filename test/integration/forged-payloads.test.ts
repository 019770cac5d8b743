import { randomUUID } from 'node:crypto';
import { Client, Connection, WorkflowUpdateFailedError } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { decideUpdate, statusQuery } from '../../workflows/app-request';
import type { RequestView } from '../../rules/app-request';
import { startTestBackend, type TestBackend } from '../support/backend';
import { CommandClient, seedOrg } from '../support/commands';
import { TopicProbe } from '../support/kafka-probe';
import { uniqueId } from '../support/test-config';

/**
 * Someone who can reach Temporal (its gRPC port, the Web UI, a leaked client certificate) but does not
 * hold the payload key cannot make the worker act: the worker refuses inputs that are not encrypted with
 * the key (AES-GCM authenticates them). A workflow started with a plaintext input fails its workflow task
 * and no workflow code runs; an Update with a plaintext (or forged ciphertext) input is rejected before it
 * is accepted, and the request goes on. Nothing is recorded.
 */
describe('forged payloads', () => {
  let backend: TestBackend;
  let probe: TopicProbe;
  let commands: CommandClient;
  let keyless: Client;
  let keylessConnection: Connection;

  beforeAll(async () => {
    backend = await startTestBackend();
    probe = await TopicProbe.start(backend.kafka, [backend.topics.commandResults]);
    commands = new CommandClient(backend, probe);
    // The attacker's client: the default data converter (JSON in clear), no codec.
    keylessConnection = await Connection.connect({ address: backend.config.TEMPORAL_ADDRESS });
    keyless = new Client({ connection: keylessConnection, namespace: backend.config.TEMPORAL_NAMESPACE });
  });

  afterAll(async () => {
    await keylessConnection?.close();
    await probe?.stop();
    await backend?.stop();
  });

  type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
  async function events(workflowId: string): Promise<HistoryEvent[]> {
    return (await keyless.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  }
  /** Waits until the workflow's history holds a failed workflow task; returns its failure message. */
  async function workflowTaskFailure(workflowId: string, after = 0): Promise<string> {
    for (let attempt = 0; attempt < 150; attempt += 1) {
      const failed = (await events(workflowId)).slice(after).find((event) => event.workflowTaskFailedEventAttributes);
      if (failed) return failed.workflowTaskFailedEventAttributes?.failure?.message ?? '';
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`no failed workflow task in ${workflowId}`);
  }

  test('a directory command started directly with a plaintext input fails its workflow task and changes nothing', async () => {
    const org = await seedOrg(commands);
    const attackerId = uniqueId('attacker');
    const commandId = randomUUID();
    const workflowId = `command-${commandId}`;
    const forged = {
      commandId,
      type: 'selfservice.directory.user-upserted.v1',
      source: 'urn:attacker',
      receivedAt: new Date().toISOString(),
      data: { orgId: org.orgId, userId: attackerId, email: `${attackerId}@${org.domain}`, status: 'ACTIVE', adminRoles: ['SUPER_ADMIN'], adminAppIds: [] },
    };
    await keyless.workflow.start('adminCommandWorkflow', { taskQueue: backend.config.TEMPORAL_TASK_QUEUE, workflowId, args: [forged] });
    try {
      const failure = await workflowTaskFailure(workflowId);
      expect(failure).toMatch(/not encrypted \(encoding "json\/plain"\).*PAYLOAD_ALLOW_PLAINTEXT=true/);
      // The workflow code never ran: no activity was scheduled, the attacker is no admin, no result was published.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const history = await events(workflowId);
      expect(history.filter((event) => event.activityTaskScheduledEventAttributes)).toEqual([]);
      expect(history.filter((event) => event.workflowTaskCompletedEventAttributes)).toEqual([]);
      await expect(backend.db.user.findUnique({ where: { id: attackerId } })).resolves.toBeNull();
      await expect(backend.db.processedCommand.findUnique({ where: { commandId } })).resolves.toBeNull();
      expect(probe.matching((record) => record.data.commandId === commandId)).toEqual([]);
    } finally {
      await keyless.workflow.getHandle(workflowId).terminate('forged-payloads test: clean up');
    }
  });

  test('a decide Update with a plaintext input is rejected: the request is not approved, and goes on', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'approver'] });
    const appId = uniqueId('app');
    await commands.directory('org-app-upserted', { orgId: org.orgId, appId, label: `App ${appId}`, signOnMode: 'SAML', status: 'ACTIVE' });
    await commands.accepted('adminCommands', 'selfservice.app.self-service-configured.v1', {
      orgId: org.orgId,
      actorId: org.superAdminId,
      appId,
      config: { requestsEnabled: true, approvalRequired: true, approverSteps: [{ type: 'USER', id: org.user('approver'), timeout: { days: 7 } }] },
    });
    const requested = await commands.accepted('userRequests', 'selfservice.app.requested.v1', { orgId: org.orgId, userId: org.user('requester'), appId });
    const requestId = requested.data.requestId as string;
    const workflowId = requested.data.workflowId as string;
    const handle = backend.client.workflow.getHandle(workflowId);
    let view: RequestView | undefined;
    for (let attempt = 0; attempt < 100 && view?.status !== 'PENDING'; attempt += 1) {
      view = await handle.query(statusQuery);
      if (view.status !== 'PENDING') await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(view?.status).toBe('PENDING');
    const before = (await events(workflowId)).length;

    // The approver's decision, forged by someone without the key: plaintext JSON. The worker rejects the
    // Update before accepting it (its input does not convert), so the workflow task completes.
    const forged = keylessConnection.withDeadline(Date.now() + 30_000, () =>
      keyless.workflow.getHandle(workflowId).executeUpdate(decideUpdate, { args: [{ approverId: org.user('approver'), decision: 'APPROVE', comment: 'forged' }] }),
    );
    const refusal = await forged.then(
      () => null,
      (error: unknown) => error,
    );
    expect(refusal).toBeInstanceOf(WorkflowUpdateFailedError);
    expect(String((refusal as WorkflowUpdateFailedError).cause?.message)).toMatch(/refused by the payload codec: not encrypted \(encoding "json\/plain"\).*PAYLOAD_ALLOW_PLAINTEXT=true/);

    const history = (await events(workflowId)).slice(before);
    expect(history.filter((event) => event.workflowExecutionUpdateAcceptedEventAttributes || event.workflowExecutionUpdateCompletedEventAttributes)).toEqual([]);
    expect(history.filter((event) => event.workflowTaskFailedEventAttributes)).toEqual([]);
    // The same with ciphertext that was not made with the key.
    const garbage = { metadata: { encoding: Buffer.from('binary/encrypted'), 'encryption-key-id': Buffer.from('test-key') }, data: Buffer.alloc(64, 7) };
    const rawUpdate = await keylessConnection
      .withDeadline(Date.now() + 30_000, () =>
        keylessConnection.workflowService.updateWorkflowExecution({
          namespace: backend.config.TEMPORAL_NAMESPACE,
          workflowExecution: { workflowId },
          waitPolicy: { lifecycleStage: 3 /* COMPLETED */ },
          request: { meta: { updateId: randomUUID(), identity: 'attacker' }, input: { name: 'decide', args: { payloads: [garbage] } } },
        }),
      );
    expect(rawUpdate.outcome?.failure?.message).toMatch(/does not decrypt with key "test-key"/);
    expect((await handle.query(statusQuery)).status).toBe('PENDING');
    await expect(backend.db.appRequest.findUniqueOrThrow({ where: { id: requestId } })).resolves.toMatchObject({ status: 'PENDING' });
    await expect(backend.db.appAssignment.count({ where: { userId: org.user('requester'), appId } })).resolves.toBe(0);

    // The request is not stuck: the approver's real decision (through Kafka, encrypted) is recorded.
    const decided = await commands.send('decisions', 'selfservice.app-request.decided.v1', { orgId: org.orgId, requestId, approverId: org.user('approver'), decision: 'DENY' });
    expect(decided.type).toBe('selfservice.command.accepted.v1');
    const final = (await handle.result()) as RequestView;
    expect(final.status).toBe('DENIED');
    expect(final.timeline.map((entry) => entry.comment ?? null)).not.toContain('forged');
    await expect(backend.db.appAssignment.count({ where: { userId: org.user('requester'), appId } })).resolves.toBe(0);
  });
});
