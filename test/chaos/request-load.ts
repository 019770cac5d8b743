import { requestIdFor } from '../../rules/identifiers';
import type { CommandSender } from './command-sender';
import type { Announced, EventLog } from './event-log';
import type { ChaosOrg, RoundApps } from './org';

/** One app request of the load, and the decisions sent for it. */
export interface TrackedRequest {
  round: string;
  commandId: string;
  requestId: string;
  userId: string;
  appId: string;
  needsApproval: boolean;
  /** Command ids of the approver's decisions (a refused decision is sent again, see Approver). */
  decisionIds: string[];
  /** Codes of refused decisions that were sent again, and what the refusals said. */
  refusedDecisions: string[];
  refusals: string[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const REQUEST_EVENT = 'selfservice.app.access_request.request.v1';
const APP_ASSIGNED = 'selfservice.dashboard.app-assigned.v1';
const MAX_DECISIONS = 10;

/**
 * The approver: when a request for the approval app appears on the access-request topic, sends an
 * APPROVE through Kafka. The request event is announced before the workflow opens its first step, so
 * a decision can arrive too early and be refused (REQUEST_NOT_PENDING / NOT_CURRENT_APPROVER); a
 * person would press the button again, and so does this approver, with a new command, after a second,
 * as long as the request is not granted. Each resend is counted in the report.
 */
export class Approver {
  private readonly byRequestId = new Map<string, { request: TrackedRequest; org: ChaosOrg }>();
  private readonly decided = new Set<string>();
  private readonly granted = new Set<string>();
  errors: string[] = [];

  constructor(
    private readonly commands: CommandSender,
    events: EventLog,
  ) {
    events.onRecord((record) => this.observe(record));
  }

  track(request: TrackedRequest, org: ChaosOrg): void {
    this.byRequestId.set(request.requestId, { request, org });
  }

  private observe(record: Announced): void {
    if (record.type === APP_ASSIGNED && typeof record.data.requestId === 'string') {
      this.granted.add(record.data.requestId);
      return;
    }
    if (record.type !== REQUEST_EVENT || typeof record.data.requestId !== 'string') return;
    const tracked = this.byRequestId.get(record.data.requestId);
    if (!tracked || !tracked.request.needsApproval || this.decided.has(tracked.request.requestId)) return;
    this.decided.add(tracked.request.requestId);
    void this.decide(tracked.request, tracked.org).catch((error: unknown) => {
      this.errors.push(`decision for ${tracked.request.requestId}: ${(error as Error).message}`);
    });
  }

  private async decide(request: TrackedRequest, org: ChaosOrg): Promise<void> {
    for (let attempt = 1; attempt <= MAX_DECISIONS; attempt++) {
      const id = await this.commands.send(request.round, 'decisions', 'selfservice.app-request.decided.v1', {
        orgId: org.orgId,
        requestId: request.requestId,
        approverId: org.approverId,
        decision: 'APPROVE',
      });
      request.decisionIds.push(id);
      // Without a result there is nothing to react to: a missing result is what the audit reports.
      const result = await this.commands.waitForResult(id, 10 * 60_000).catch(() => null);
      if (!result || result.type === 'selfservice.command.accepted.v1') return;
      const code = String(result.data.code);
      if (this.granted.has(request.requestId) || !['REQUEST_NOT_PENDING', 'NOT_CURRENT_APPROVER'].includes(code)) return;
      request.refusedDecisions.push(code);
      request.refusals.push(`${code}: ${String(result.data.message)} (decision sent ${new Date(this.commands.sent.get(id)?.sentAt ?? 0).toISOString()}, refused ${new Date(result.sentAt).toISOString()})`);
      await sleep(1000);
      if (this.granted.has(request.requestId)) return;
    }
  }
}

/**
 * Sends the requests of one round at a steady rate, one per requester: every other one for the app
 * that needs approval.
 */
export async function sendRequests(
  commands: CommandSender,
  approver: Approver,
  org: ChaosOrg,
  apps: RoundApps,
  perSecond: number,
  requests: TrackedRequest[],
): Promise<void> {
  const started = Date.now();
  const sends: Promise<void>[] = [];
  for (const [index, userId] of org.requesters.entries()) {
    const due = started + (index * 1000) / perSecond;
    if (due > Date.now()) await sleep(due - Date.now());
    const needsApproval = index % 2 === 1;
    const appId = needsApproval ? apps.approvalAppId : apps.autoAppId;
    sends.push(
      (async () => {
        // The id is chosen before the send, so the approver knows the request when its event appears.
        const request: TrackedRequest = {
          round: apps.round,
          commandId: '',
          requestId: '',
          userId,
          appId,
          needsApproval,
          decisionIds: [],
          refusedDecisions: [],
          refusals: [],
        };
        const commandId = await commands.send(apps.round, 'userRequests', 'selfservice.app.requested.v1', { orgId: org.orgId, userId, appId }, (id) => {
          request.commandId = id;
          request.requestId = requestIdFor(id);
          requests.push(request);
          approver.track(request, org);
        });
        request.commandId = commandId;
      })(),
    );
  }
  await Promise.all(sends);
}
