import { WorkflowNotFoundError } from '@temporalio/client';
import type { Database } from '../../activities/database';
import { requestIdFor } from '../../rules/identifiers';
import { appRequestWorkflowId } from '../../rules/app-request';
import { SelfServiceApproverIds } from '../../workflows/search-attributes';
import { startTestBackend, type TestBackend } from '../support/backend';
import { CommandClient, seedOrg, type SeededOrg } from '../support/commands';
import { resultFor, sendCommand, TopicProbe, type SeenRecord } from '../support/kafka-probe';
import { mailsTo } from '../support/mailpit';
import { ownerDatabase } from '../support/owner-database';
import { SmtpOutageSwitch } from '../support/smtp-outage';
import { uniqueId } from '../support/test-config';

/**
 * Failures stay with the one command they belong to, on the real services: a permanent database
 * refusal (a constraint the test adds) ends its command with INTERNAL_ERROR and an incident id while
 * the commands behind it go on; an SMTP outage holds up no decision; a replayed command never
 * re-opens a closed request; large approver groups stay within Temporal's limits.
 */
describe('failure isolation', () => {
  let backend: TestBackend;
  let probe: TopicProbe;
  let commands: CommandClient;
  let smtp: SmtpOutageSwitch;
  /** The tables' owner: only it may add the constraints and locks that inject faults. */
  let owner: Database;

  beforeAll(async () => {
    const { testConfig } = await import('../support/test-config');
    smtp = await SmtpOutageSwitch.start(testConfig().SMTP_URL);
    backend = await startTestBackend({ overrides: { SMTP_URL: smtp.smtpUrl } });
    probe = await TopicProbe.start(backend.kafka, [backend.topics.commandResults, backend.topics.deadLetters, backend.topics.dashboard]);
    commands = new CommandClient(backend, probe);
    owner = ownerDatabase();
  });

  afterAll(async () => {
    await probe?.stop();
    await backend?.stop();
    await smtp?.cut();
    await owner?.$disconnect();
  });

  const within10s = (predicate: (record: SeenRecord) => boolean, what: string) => probe.waitFor(predicate, what, 10_000);

  async function app(org: SeededOrg, config: Record<string, unknown>): Promise<string> {
    const appId = uniqueId('app');
    await commands.directory('org-app-upserted', { orgId: org.orgId, appId, label: `App ${appId}`, signOnMode: 'SAML', status: 'ACTIVE' });
    await commands.accepted('adminCommands', 'selfservice.app.self-service-configured.v1', { orgId: org.orgId, actorId: org.superAdminId, appId, config });
    return appId;
  }

  /** A constraint that PostgreSQL enforces for one value: the permanent failure that no retry cures. */
  async function withPoison<T>(table: string, column: string, value: string, run: () => Promise<T>): Promise<T> {
    const name = `poison_${Math.random().toString(16).slice(2, 10)}`;
    await owner.$executeRawUnsafe(`ALTER TABLE "${table}" ADD CONSTRAINT ${name} CHECK ("${column}" <> '${value}') NOT VALID`);
    try {
      return await run();
    } finally {
      await owner.$executeRawUnsafe(`ALTER TABLE "${table}" DROP CONSTRAINT ${name}`);
    }
  }

  test('a command refused by the database ends with INTERNAL_ERROR and an incident id; the next one on its partition goes on', async () => {
    const org = await seedOrg(commands, { users: ['poison'], adminRoles: { poison: ['SUPER_ADMIN'] } });
    const logged: string[] = [];
    // The one logger writes errors as JSON lines to stderr.
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation(((chunk: string | Uint8Array) => {
      logged.push(String(chunk));
      return true;
    }) as typeof process.stderr.write);
    try {
      await withPoison('AuditEntry', 'actorId', org.user('poison'), async () => {
        const poisoned = await sendCommand(backend.producer, backend.topics.adminCommands, 'selfservice.settings.update-requested.v1', {
          orgId: org.orgId,
          actorId: org.user('poison'),
          changes: { allowPersonalApps: true },
        });
        const next = await sendCommand(backend.producer, backend.topics.adminCommands, 'selfservice.settings.update-requested.v1', {
          orgId: org.orgId,
          actorId: org.superAdminId,
          changes: { allowOrgManagedApps: false },
        });
        const failed = await within10s(resultFor(poisoned), 'the INTERNAL_ERROR of the poisoned command');
        expect(failed.data.code).toBe('INTERNAL_ERROR');
        const incidentId = failed.data.incidentId as string;
        expect(failed.data.message).toContain(incidentId);
        expect(logged.some((line) => line.includes(incidentId))).toBe(true);
        const copy = await within10s((record) => record.topic === backend.topics.deadLetters && record.id === `${poisoned}:dead-letter`, 'the dead-letter copy');
        expect(copy.data.incidentId).toBe(incidentId);
        expect((await within10s(resultFor(next), 'the command behind it')).type).toBe('selfservice.command.accepted.v1');
      });
    } finally {
      spy.mockRestore();
    }
    const settings = await backend.db.orgSettings.findUniqueOrThrow({ where: { orgId: org.orgId } });
    expect({ personal: settings.allowPersonalApps, orgManaged: settings.allowOrgManagedApps }).toEqual({ personal: false, orgManaged: false });
  });

  test('a command that waits on a locked table keeps the ingress in its group, and gets its one result once the lock is gone', async () => {
    const org = await seedOrg(commands);
    const consumer = backend.ingressConsumer()!;
    let joins = 0;
    const stopWatching = consumer.on(consumer.events.GROUP_JOIN, () => void (joins += 1));
    let waiting: string | null = null;
    try {
      // A transient fault: PostgreSQL holds the settings table for 12 s, longer than the group's session timeout (10 s).
      await owner.$transaction(
        async (tx) => {
          await tx.$executeRawUnsafe('LOCK TABLE "OrgSettings" IN ACCESS EXCLUSIVE MODE');
          waiting = await sendCommand(backend.producer, backend.topics.adminCommands, 'selfservice.settings.update-requested.v1', {
            orgId: org.orgId,
            actorId: org.superAdminId,
            changes: { allowPersonalApps: true },
          });
          await new Promise((resolve) => setTimeout(resolve, 5_000));
          expect(probe.matching(resultFor(waiting!))).toHaveLength(0);
          await new Promise((resolve) => setTimeout(resolve, 7_000));
        },
        { timeout: 30_000, maxWait: 5_000 },
      );
      expect((await within10s(resultFor(waiting!), 'the command that waited')).type).toBe('selfservice.command.accepted.v1');
      // A member the group dropped while it waited would rejoin once its message is done.
      await new Promise((resolve) => setTimeout(resolve, 5_000));
      expect(joins).toBe(0);
      expect(probe.matching(resultFor(waiting!))).toHaveLength(1);
    } finally {
      stopWatching();
    }
  }, 60_000);

  test('an app request refused by the database ends with INTERNAL_ERROR; its workflow fails visibly with the incident', async () => {
    const org = await seedOrg(commands, { users: ['poison', 'other'] });
    const appId = await app(org, { requestsEnabled: true, approvalRequired: false });
    await withPoison('AppRequest', 'requesterId', org.user('poison'), async () => {
      const poisoned = await sendCommand(backend.producer, backend.topics.userRequests, 'selfservice.app.requested.v1', { orgId: org.orgId, userId: org.user('poison'), appId });
      const failed = await within10s(resultFor(poisoned), 'the INTERNAL_ERROR of the poisoned request');
      expect(failed.data.code).toBe('INTERNAL_ERROR');
      const workflow = backend.client.workflow.getHandle(appRequestWorkflowId(requestIdFor(poisoned)));
      await waitUntil(async () => (await workflow.describe()).status.name === 'FAILED', 'the workflow to fail', 10_000);
      const other = await commands.accepted('userRequests', 'selfservice.app.requested.v1', { orgId: org.orgId, userId: org.user('other'), appId });
      await within10s((record) => record.topic === backend.topics.dashboard && record.data.requestId === other.data.requestId, 'the other request granted');
    });
    await expect(backend.db.appRequest.count({ where: { requesterId: org.user('poison') } })).resolves.toBe(0);
  });

  test('with SMTP down a decision is recorded and the app granted at once; the emails follow once it is back', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'approver'] });
    const appId = await app(org, {
      requestsEnabled: true,
      approvalRequired: true,
      approverSteps: [{ type: 'USER', id: org.user('approver'), timeout: { days: 7 } }],
    });
    await smtp.cut();
    try {
      const submitted = await commands.accepted('userRequests', 'selfservice.app.requested.v1', { orgId: org.orgId, userId: org.user('requester'), appId });
      const requestId = submitted.data.requestId as string;
      await waitUntil(async () => (await backend.db.appRequest.findUnique({ where: { id: requestId } }))?.currentStep === 1, 'step 1 to start');
      const decision = await sendCommand(backend.producer, backend.topics.decisions, 'selfservice.app-request.decided.v1', {
        orgId: org.orgId,
        requestId,
        approverId: org.user('approver'),
        decision: 'APPROVE',
      });
      expect((await within10s(resultFor(decision), 'the decision result while SMTP is down')).type).toBe('selfservice.command.accepted.v1');
      await within10s((record) => record.topic === backend.topics.dashboard && record.data.requestId === requestId, 'the grant while SMTP is down');
      expect(await mailsTo(org.email('approver'))).toHaveLength(0);
    } finally {
      await smtp.restore();
    }
    await waitUntil(async () => (await mailsTo(org.email('approver'))).length === 1 && (await mailsTo(org.email('requester'))).length === 1, 'the emails after SMTP is back', 90_000);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect((await mailsTo(org.email('approver'))).length).toBe(1);
    expect((await mailsTo(org.email('requester'))).length).toBe(1);
  });

  test('with SMTP down an app without approval is granted at once; its email, tried locally, follows once SMTP is back', async () => {
    const org = await seedOrg(commands, { users: ['requester'] });
    const appId = await app(org, { requestsEnabled: true, approvalRequired: false });
    await smtp.cut();
    let requestId: string;
    try {
      const submitted = await commands.accepted('userRequests', 'selfservice.app.requested.v1', { orgId: org.orgId, userId: org.user('requester'), appId });
      requestId = submitted.data.requestId as string;
      await within10s((record) => record.topic === backend.topics.dashboard && record.data.requestId === requestId, 'the grant while SMTP is down');
      // The local tries (a few seconds) run out; the email goes on as a regular activity, retried until SMTP is back.
      const workflow = backend.client.workflow.getHandle(appRequestWorkflowId(requestId));
      await waitUntil(async () => (await workflow.fetchHistory()).events?.some((event) => event.activityTaskScheduledEventAttributes) ?? false, 'the email to go on as a regular activity', 30_000);
      expect((await workflow.describe()).status.name).toBe('RUNNING');
      expect(await mailsTo(org.email('requester'))).toHaveLength(0);
    } finally {
      await smtp.restore();
    }
    await waitUntil(async () => (await mailsTo(org.email('requester'))).length === 1, 'the email after SMTP is back', 90_000);
    await backend.client.workflow.getHandle(appRequestWorkflowId(requestId)).result();
    expect(await mailsTo(org.email('requester'))).toHaveLength(1);
  });

  test('a request command replayed after its workflow history is gone does not re-open the request', async () => {
    const org = await seedOrg(commands, { users: ['requester'] });
    const appId = await app(org, { requestsEnabled: true, approvalRequired: false });
    const id = uniqueId('cmd');
    const data = { orgId: org.orgId, userId: org.user('requester'), appId };
    await sendCommand(backend.producer, backend.topics.userRequests, 'selfservice.app.requested.v1', data, { id });
    const result = await within10s(resultFor(id), 'the first result');
    const workflowId = result.data.workflowId as string;
    const handle = backend.client.workflow.getHandle(workflowId);
    await handle.result();
    // What Temporal does when the namespace's retention has passed: the history is deleted.
    await backend.client.workflowService.deleteWorkflowExecution({ namespace: backend.config.TEMPORAL_NAMESPACE, workflowExecution: { workflowId } });
    await waitUntil(async () => handle.describe().then(() => false, (error: unknown) => error instanceof WorkflowNotFoundError), 'the history to be gone', 120_000);

    await sendCommand(backend.producer, backend.topics.userRequests, 'selfservice.app.requested.v1', data, { id });
    const marker = await sendCommand(backend.producer, backend.topics.userRequests, 'selfservice.app.requested.v1', { ...data, userId: org.superAdminId });
    await within10s(resultFor(marker), 'a later command on the same partition');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await expect(handle.describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
    expect(probe.matching(resultFor(id))).toHaveLength(1);
    await expect(backend.db.appAssignment.count({ where: { userId: org.user('requester'), appId } })).resolves.toBe(1);
  }, 240_000);

  /** Users straight into the directory tables (a bulk load), then the group through Kafka. */
  async function groupOf(org: SeededOrg, size: number): Promise<{ groupId: string; memberIds: string[] }> {
    const groupId = uniqueId('group');
    const memberIds = Array.from({ length: size }, (_, index) => `${groupId}-member-${String(index).padStart(5, '0')}`);
    await backend.db.user.createMany({
      data: memberIds.map((id) => ({ id, orgId: org.orgId, email: `${id}@${org.domain}`, status: 'ACTIVE' as const, adminRoles: [] })),
    });
    await commands.directory('group-upserted', { orgId: org.orgId, groupId, name: `Group of ${size}`, memberIds });
    return { groupId, memberIds };
  }

  async function approvedByLastMember(org: SeededOrg, size: number, comment?: string) {
    // A hundred approver emails would flood the shared sink: SMTP stays down, the request goes on.
    await smtp.cut();
    const { groupId, memberIds } = await groupOf(org, size);
    const appId = await app(org, {
      requestsEnabled: true,
      approvalRequired: true,
      approverSteps: [{ type: 'GROUP', id: groupId, timeout: { days: 7 } }],
    });
    const submitted = await commands.accepted('userRequests', 'selfservice.app.requested.v1', { orgId: org.orgId, userId: org.user('requester'), appId, ...(comment ? { comment } : {}) });
    const requestId = submitted.data.requestId as string;
    const handle = backend.client.workflow.getHandle(submitted.data.workflowId as string);
    let searchable: string[] = [];
    await waitUntil(async () => {
      searchable = ((await handle.describe()).typedSearchAttributes.get(SelfServiceApproverIds) ?? []) as string[];
      return searchable.length > 0;
    }, 'the approver search attribute');
    let foundByGroup = false;
    if (searchable[0] === `group:${groupId}`) {
      // While the step is pending, the Web UI's search by the group finds the request.
      await waitUntil(async () => {
        for await (const execution of backend.client.workflow.list({ query: `SelfServiceApproverIds = "group:${groupId}"` })) {
          if (execution.workflowId === handle.workflowId) foundByGroup = true;
        }
        return foundByGroup;
      }, 'the request found by its group');
    }
    const lastMember = memberIds[memberIds.length - 1]!;
    const decision = await sendCommand(backend.producer, backend.topics.decisions, 'selfservice.app-request.decided.v1', {
      orgId: org.orgId,
      requestId,
      approverId: lastMember,
      decision: 'APPROVE',
      ...(comment ? { comment } : {}),
    });
    expect((await probe.waitFor(resultFor(decision), 'the decision of the last member', 60_000)).type).toBe('selfservice.command.accepted.v1');
    await probe.waitFor((record) => record.topic === backend.topics.dashboard && record.data.requestId === requestId, 'the grant', 60_000);
    return { groupId, searchable, lastMember, foundByGroup, description: await handle.describe() };
  }

  test('a 100-member group step (the largest an approver group may be) keeps its approver search attribute under 2 KB and is found by its group', async () => {
    const org = await seedOrg(commands, { users: ['requester'] });
    const { groupId, searchable, lastMember, foundByGroup } = await approvedByLastMember(org, 100);
    expect(Buffer.byteLength(JSON.stringify(searchable))).toBeLessThanOrEqual(2048);
    expect(searchable[0]).toBe(`group:${groupId}`);
    expect(searchable).not.toContain(lastMember);
    expect(foundByGroup).toBe(true);
  });

  test('a 10,000-member group syncs, and a request with a 1,000-character comment, within Temporal limits', async () => {
    const org = await seedOrg(commands, { users: ['requester'] });
    const big = await groupOf(org, 10_000);
    // Synced again with one member less: the change is announced, and the command's history stays small enough.
    await commands.directory('group-upserted', { orgId: org.orgId, groupId: big.groupId, name: 'Big group', memberIds: big.memberIds.slice(1) });
    const { description } = await approvedByLastMember(org, 100, 'c'.repeat(1000));
    for (const execution of [description]) {
      // Temporal's defaults: 50 MB and 51,200 events per history; a payload over 2 MB would have failed the workflow.
      expect(execution.historyLength).toBeLessThan(51_200);
      expect(Number(execution.raw.workflowExecutionInfo?.historySizeBytes ?? 0)).toBeLessThan(50 * 1024 * 1024);
      expect(execution.status.name).not.toBe('FAILED');
    }
    await expect(backend.db.groupMember.count({ where: { groupId: big.groupId } })).resolves.toBe(9_999);
  }, 300_000);
});

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}
