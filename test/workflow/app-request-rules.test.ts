import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Activities } from '../../activities';
import type { Command } from '../../events/inbound';
import {
  appRequestWorkflowId,
  type ApproversNotice,
  type OutcomeNotice,
  type RequestPlan,
  type RequestView,
  type ReviewVerdict,
  type StepPlan,
  type Transition,
} from '../../rules/app-request';
import { administerUpdate, appRequestWorkflow, cancelUpdate, decideUpdate, reviewSignal, statusQuery } from '../../workflows/app-request';
import { dataConverterFor } from '../../workers/payload-codec';
import { startTimeSkippingServer } from '../support/backend';
import { testConfig } from '../support/test-config';
import { updateRefusal } from '../support/requests';

/**
 * The request's decision rules on the time-skipping server with stubbed activities: no database, no
 * Kafka, no SMTP. Each test reads the status Query and what the stubs were asked to record and send.
 */

type StubbedActivities = Pick<
  Activities,
  | 'submitAppRequest'
  | 'recordRequestChange'
  | 'startRequestStep'
  | 'reviewPendingRequest'
  | 'authorizeRequestAdmin'
  | 'notifyApprovers'
  | 'notifyOutcome'
  | 'recordCommandFailed'
>;
type RecordedChange = Parameters<Activities['recordRequestChange']>[0];

interface Scenario {
  steps?: StepPlan[];
  /** What a review, or the start of a later step, finds in the directory. */
  review?: ReviewVerdict;
  /** Actors whose admin rights the directory no longer confirms. */
  notAdmins?: string[];
  /** The submission fails permanently (data no store accepts). */
  poisoned?: boolean;
}

interface StubbedRequest {
  requestId: string;
  handle: WorkflowHandle<typeof appRequestWorkflow>;
  /** Activity names in the order they were called. */
  calls: string[];
  changes: RecordedChange[];
  approverNotices: ApproversNotice[];
  outcomeNotices: OutcomeNotice[];
  /** Names of the recorded transitions, without the `app.access_request.` prefix. */
  transitions(): string[];
  atStep(step: number): Promise<RequestView>;
}

async function eventually(check: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 100 && !check(); attempt += 1) await new Promise((resolve) => setTimeout(resolve, 50));
  if (!check()) throw new Error('the expected did not happen within 5 s');
}

const step = (number: number, approverIds: string[], extra: Partial<StepPlan> = {}): StepPlan => ({
  number,
  type: 'USER',
  sourceId: approverIds[0] ?? 'nobody',
  approverIds,
  timeoutDays: 7,
  ...extra,
});

describe('app request decision rules (stubbed activities, time-skipping server)', () => {
  let env: TestWorkflowEnvironment;
  let workflowCode: string;
  const dataConverter = dataConverterFor(testConfig());

  beforeAll(async () => {
    env = await startTimeSkippingServer();
    workflowCode = readFileSync(process.env.SELFSERVICE_WORKFLOW_BUNDLE!, 'utf8');
  });

  afterAll(async () => {
    await env?.teardown();
  });

  /** Starts one request as the ingress does, on a worker of its own whose activities are stubs, and runs `body` against it. */
  async function withRequest(scenario: Scenario, body: (request: StubbedRequest) => Promise<void>): Promise<void> {
    const taskQueue = `rules-${randomUUID()}`;
    const commandId = randomUUID();
    const requestId = `req-${commandId}`;
    const plan: RequestPlan = {
      requestId,
      orgId: 'org-1',
      appId: 'app-1',
      appLabel: 'Expenses',
      requesterId: 'u-requester',
      approvalRequired: (scenario.steps ?? []).length > 0,
      steps: scenario.steps ?? [],
      adminIds: ['u-admin'],
      notifications: {},
    };
    const calls: string[] = [];
    const changes: RecordedChange[] = [];
    const approverNotices: ApproversNotice[] = [];
    const outcomeNotices: OutcomeNotice[] = [];
    const activities: StubbedActivities = {
      async submitAppRequest() {
        calls.push('submitAppRequest');
        if (scenario.poisoned) throw ApplicationFailure.create({ type: 'PERMANENT_FAILURE', message: 'poisoned', nonRetryable: true, details: ['inc-test'] });
        return { accepted: true, plan, eventIds: [] };
      },
      async recordRequestChange(input) {
        calls.push('recordRequestChange');
        changes.push(input);
      },
      async startRequestStep() {
        calls.push('startRequestStep');
        return scenario.review ?? { approverIds: null };
      },
      async reviewPendingRequest() {
        calls.push('reviewPendingRequest');
        return scenario.review ?? { approverIds: null };
      },
      async authorizeRequestAdmin(input) {
        calls.push('authorizeRequestAdmin');
        if (scenario.notAdmins?.includes(input.actorId)) throw ApplicationFailure.create({ type: 'NOT_AUTHORIZED', message: `${input.actorId} is no admin`, nonRetryable: true });
      },
      async notifyApprovers(input) {
        calls.push('notifyApprovers');
        approverNotices.push(input);
        return input.approverIds.length;
      },
      async notifyOutcome(input) {
        calls.push('notifyOutcome');
        outcomeNotices.push(input);
        return 1;
      },
      async recordCommandFailed({ command, incidentId }) {
        calls.push('recordCommandFailed');
        return { commandId: command.commandId, commandType: command.type, outcome: 'REJECTED', code: 'INTERNAL_ERROR', message: incidentId, details: { incidentId }, eventIds: [] };
      },
    };
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: { code: workflowCode }, activities, dataConverter });
    const command: Extract<Command, { type: 'selfservice.app.requested.v1' }> = {
      commandId,
      type: 'selfservice.app.requested.v1',
      source: 'test',
      receivedAt: new Date().toISOString(),
      data: { orgId: plan.orgId, userId: plan.requesterId, appId: plan.appId },
    };
    await worker.runUntil(async () => {
      const handle = await env.client.workflow.start(appRequestWorkflow, { taskQueue, workflowId: appRequestWorkflowId(requestId), args: [command, { requestId }] });
      await body({
        requestId,
        handle,
        calls,
        changes,
        approverNotices,
        outcomeNotices,
        transitions: () => changes.flatMap((change) => change.transitions.map((transition: Transition) => transition.name.replace('app.access_request.', ''))),
        async atStep(number) {
          for (let attempt = 0; attempt < 100; attempt += 1) {
            const view = await handle.query(statusQuery);
            if (view.currentStep === number && view.stepDeadline) return view;
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
          throw new Error(`never reached step ${number}`);
        },
      });
    });
  }

  /** The code of a refused Update, found as the ingress finds it (it may come wrapped in an activity failure). */

  test('an app without approval is granted in one workflow task: submission, grant and outcome email as local activities, nothing else', async () => {
    await withRequest({}, async ({ handle, calls, changes }) => {
      const view = await handle.result();
      expect(view).toMatchObject({ status: 'APPROVED', currentStep: null, currentApproverIds: [] });
      expect(view.timeline.map((entry) => entry.name)).toEqual(['app.access_request.request', 'app.access_request.grant']);
      expect(calls).toEqual(['submitAppRequest', 'recordRequestChange', 'notifyOutcome']);
      expect(changes[0]?.transitions).toEqual([expect.objectContaining({ sequence: 2, name: 'app.access_request.grant', status: 'APPROVED', assign: true })]);

      const events = (await handle.fetchHistory()).events ?? [];
      expect(events.filter((event) => event.markerRecordedEventAttributes?.markerName === 'core_local_activity')).toHaveLength(3);
      expect(events.filter((event) => event.activityTaskScheduledEventAttributes)).toHaveLength(0);
      expect(events.filter((event) => event.workflowTaskCompletedEventAttributes)).toHaveLength(1);
      // The request's own search attributes in one upsert, after the grant (the others are Temporal's patch versions).
      const upserts = events.flatMap((event) => Object.keys(event.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields ?? {}));
      expect(upserts.filter((key) => key === 'SelfServiceStatus')).toHaveLength(1);
      const searchable = (await handle.describe()).typedSearchAttributes;
      expect(searchable.getAll().map(({ key, value }) => [key.name, value])).toEqual(
        expect.arrayContaining([
          ['SelfServiceStatus', 'APPROVED'],
          ['SelfServiceRequesterId', 'u-requester'],
        ]),
      );
    });
  });

  test('two steps approved in turn: each decision is recorded with its acknowledgement, the second step starts against the directory', async () => {
    await withRequest({ steps: [step(1, ['u-manager']), step(2, ['u-owner'])], review: { approverIds: ['u-owner', 'u-deputy'] } }, async (request) => {
      const first = await request.atStep(1);
      expect(first).toMatchObject({ status: 'PENDING', currentApproverIds: ['u-manager'] });
      await request.handle.executeUpdate(decideUpdate, { args: [{ approverId: 'u-manager', decision: 'APPROVE', commandId: 'cmd-1', orgId: 'org-1' }] });

      const second = await request.atStep(2);
      expect(second.currentApproverIds).toEqual(['u-owner', 'u-deputy']);
      await expect(request.handle.executeUpdate(decideUpdate, { args: [{ approverId: 'u-manager', decision: 'APPROVE' }] }).catch(updateRefusal)).resolves.toBe('NOT_CURRENT_APPROVER');
      const answer = await request.handle.executeUpdate(decideUpdate, { args: [{ approverId: 'u-deputy', decision: 'APPROVE', comment: 'fine' }] });
      expect(answer.status).toBe('APPROVED');

      expect(request.transitions()).toEqual(['approver.approve', 'approver.approve', 'grant']);
      expect(request.changes[0]?.accepted).toEqual({
        command: { commandId: 'cmd-1', type: 'selfservice.app-request.decided.v1', orgId: 'org-1' },
        details: { requestId: request.requestId, workflowId: appRequestWorkflowId(request.requestId), step: 1, decision: 'APPROVE' },
      });
      // The last approval and the grant are one change; an Update without a command id acknowledges nothing.
      expect(request.changes[1]).toMatchObject({ transitions: [{ name: 'app.access_request.approver.approve', actorId: 'u-deputy', step: 2 }, { name: 'app.access_request.grant', actorId: 'u-deputy' }] });
      expect(request.changes[1]?.accepted).toBeUndefined();
      expect(request.calls.filter((name) => name === 'startRequestStep')).toHaveLength(1);
      expect(request.approverNotices.map((notice) => [notice.step, notice.approverIds, notice.notice])).toEqual([
        [1, ['u-manager'], 'request'],
        [2, ['u-owner', 'u-deputy'], 'request'],
      ]);
      await request.handle.result();
      expect(request.outcomeNotices).toEqual([expect.objectContaining({ outcome: 'APPROVED', actorId: 'u-deputy', approverIds: ['u-manager', 'u-owner', 'u-deputy'] })]);
    });
  });

  test('a denial ends the request at its step; the requester may not decide, nor anyone decide twice', async () => {
    await withRequest({ steps: [step(1, ['u-manager', 'u-requester']), step(2, ['u-owner'])] }, async (request) => {
      await request.atStep(1);
      await expect(request.handle.executeUpdate(decideUpdate, { args: [{ approverId: 'u-requester', decision: 'APPROVE' }] }).catch(updateRefusal)).resolves.toBe('REQUESTER_CANNOT_DECIDE');
      const denied = await request.handle.executeUpdate(decideUpdate, { args: [{ approverId: 'u-manager', decision: 'DENY', comment: 'no budget' }] });
      expect(denied).toMatchObject({ status: 'DENIED', currentStep: null });
      await expect(request.handle.executeUpdate(decideUpdate, { args: [{ approverId: 'u-manager', decision: 'APPROVE' }] }).catch(updateRefusal)).resolves.toBe('REQUEST_NOT_PENDING');

      expect((await request.handle.result()).status).toBe('DENIED');
      expect(request.transitions()).toEqual(['approver.deny', 'deny']);
      expect(request.outcomeNotices).toEqual([expect.objectContaining({ outcome: 'DENIED', comment: 'no budget', actorId: 'u-manager' })]);
      expect(request.calls).not.toContain('startRequestStep');
    });
  });

  test('the requester cancels: recorded and acknowledged in one change, no email', async () => {
    await withRequest({ steps: [step(1, ['u-manager'])] }, async (request) => {
      await request.atStep(1);
      await expect(request.handle.executeUpdate(cancelUpdate, { args: [{ requesterId: 'u-manager' }] }).catch(updateRefusal)).resolves.toBe('NOT_REQUESTER');
      const view = await request.handle.executeUpdate(cancelUpdate, { args: [{ requesterId: 'u-requester', commandId: 'cmd-cancel', orgId: 'org-1' }] });
      expect(view.status).toBe('CANCELLED');

      await request.handle.result();
      expect(request.changes).toEqual([
        {
          transitions: [expect.objectContaining({ name: 'app.access_request.cancel', actorId: 'u-requester', status: 'CANCELLED' })],
          accepted: expect.objectContaining({ command: { commandId: 'cmd-cancel', type: 'selfservice.app-request.cancelled.v1', orgId: 'org-1' } }),
          // Whose request it is, from the plan: the change's events are made without reading the request back.
          request: { orgId: 'org-1', appId: 'app-1', requesterId: 'u-requester' },
        },
      ]);
      expect(request.outcomeNotices).toEqual([]);
    });
  });

  test('nobody decides: the approvers are reminded before the deadline, then the request expires on time', async () => {
    await withRequest({ steps: [step(1, ['u-manager'], { timeoutDays: 7, reminderDaysBefore: 2 })] }, async (request) => {
      const started = await request.atStep(1);
      const view = await request.handle.result();
      expect(view.status).toBe('EXPIRED');
      expect(request.transitions()).toEqual(['remind', 'expire']);
      const [, remind, expire] = view.timeline.map((entry) => Date.parse(entry.at));
      expect(remind! - Date.parse(started.timeline[0]!.at)).toBeGreaterThanOrEqual(5 * 24 * 3600 * 1000);
      expect(expire).toBeGreaterThanOrEqual(Date.parse(started.stepDeadline!));
      expect(request.approverNotices.map((notice) => notice.notice)).toEqual(['request', 'reminder']);
      expect(request.outcomeNotices).toEqual([expect.objectContaining({ outcome: 'EXPIRED' })]);
    });
  });

  test('a review re-routes the step: new approvers are emailed, one who left may no longer decide', async () => {
    await withRequest({ steps: [step(1, ['u-f1', 'u-f2'], { type: 'GROUP', sourceId: 'g-finance' })], review: { approverIds: ['u-f2', 'u-f3'], adminIds: [] } }, async (request) => {
      await request.atStep(1);
      await request.handle.signal(reviewSignal);
      await eventually(() => request.approverNotices.length === 2);

      const view = await request.handle.query(statusQuery);
      expect(view.currentApproverIds).toEqual(['u-f2', 'u-f3']);
      expect(request.changes[0]?.transitions).toEqual([expect.objectContaining({ name: 'app.access_request.reroute', step: 1, currentApproverIds: ['u-f2', 'u-f3'] })]);
      expect(request.approverNotices.at(-1)).toMatchObject({ approverIds: ['u-f3'], notice: 'reroute-2' });
      await expect(request.handle.executeUpdate(decideUpdate, { args: [{ approverId: 'u-f1', decision: 'APPROVE' }] }).catch(updateRefusal)).resolves.toBe('NOT_CURRENT_APPROVER');
      // The review also re-read the admins: none is left.
      await expect(request.handle.executeUpdate(decideUpdate, { args: [{ approverId: 'u-admin', decision: 'APPROVE' }] }).catch(updateRefusal)).resolves.toBe('NOT_CURRENT_APPROVER');
      await request.handle.executeUpdate(decideUpdate, { args: [{ approverId: 'u-f3', decision: 'APPROVE' }] });
      expect((await request.handle.result()).status).toBe('APPROVED');
    });
  });

  test('a review that finds the request no longer allowed closes it as DELETED and tells the requester', async () => {
    await withRequest({ steps: [step(1, ['u-manager'])], review: { close: 'requests for Expenses were disabled' } }, async (request) => {
      await request.atStep(1);
      await request.handle.signal(reviewSignal);
      const view = await request.handle.result();
      expect(view).toMatchObject({ status: 'DELETED', closedReason: 'requests for Expenses were disabled' });
      expect(request.transitions()).toEqual(['delete']);
      expect(request.outcomeNotices).toEqual([expect.objectContaining({ outcome: 'DELETED', reason: 'requests for Expenses were disabled' })]);
    });
  });

  test('an admin resends, then overrides: override and grant are one change; one the directory no longer confirms is refused', async () => {
    await withRequest({ steps: [step(1, ['u-manager'])], notAdmins: ['u-admin-gone'] }, async (request) => {
      await request.atStep(1);
      await expect(request.handle.executeUpdate(administerUpdate, { args: [{ actorId: 'u-manager', action: 'OVERRIDE' }] }).catch(updateRefusal)).resolves.toBe('NOT_AUTHORIZED');
      await request.handle.executeUpdate(administerUpdate, { args: [{ actorId: 'u-admin', action: 'RESEND', commandId: 'cmd-resend', orgId: 'org-1' }] });
      // The Update returns once the resend is acknowledged; its emails go out beside it.
      await eventually(() => request.approverNotices.length === 2);
      expect(request.approverNotices.map((notice) => notice.notice)).toEqual(['request', 'resend-1']);
      expect(request.changes).toEqual([
        { transitions: [], accepted: expect.objectContaining({ details: expect.objectContaining({ action: 'RESEND' }) }), request: { orgId: 'org-1', appId: 'app-1', requesterId: 'u-requester' } },
      ]);

      const view = await request.handle.executeUpdate(administerUpdate, { args: [{ actorId: 'u-admin', action: 'OVERRIDE', reason: 'urgent', commandId: 'cmd-override', orgId: 'org-1' }] });
      expect(view.status).toBe('APPROVED');
      expect(request.changes[1]).toMatchObject({
        transitions: [
          { name: 'app.access_request.override', actorId: 'u-admin', step: 1, comment: 'urgent' },
          { name: 'app.access_request.grant', actorId: 'u-admin', assign: true },
        ],
        accepted: { details: { action: 'OVERRIDE', status: 'APPROVED' } },
      });
      await request.handle.result();
    });
    await withRequest({ steps: [step(1, ['u-manager'])], notAdmins: ['u-admin'] }, async (request) => {
      await request.atStep(1);
      // Allowed by the plan, refused by the directory (the local activity's refusal ends the Update).
      await expect(request.handle.executeUpdate(administerUpdate, { args: [{ actorId: 'u-admin', action: 'DELETE' }] }).catch(updateRefusal)).resolves.toBe('NOT_AUTHORIZED');
      expect((await request.handle.query(statusQuery)).status).toBe('PENDING');
      await request.handle.executeUpdate(cancelUpdate, { args: [{ requesterId: 'u-requester' }] });
      await request.handle.result();
    });
  });

  test('a permanent failure of a local activity ends the command with its incident', async () => {
    await withRequest({ poisoned: true }, async ({ handle, calls }) => {
      const failure = await handle.result().catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(WorkflowFailedError);
      expect(((failure as WorkflowFailedError).cause as ApplicationFailure).type).toBe('INTERNAL_ERROR');
      expect(calls).toEqual(['submitAppRequest', 'recordCommandFailed']);
    });
  });
});
