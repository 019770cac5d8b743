import { createHash } from 'node:crypto';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure, TypedSearchAttributes } from '@temporalio/common';
import type { AuditDraft, CommandResult } from '../activities/command-ledger';
import { appRequestWorkflowId, type AdminActionInput, type CancelInput, type DecisionInput } from '../workflows/app-request-model';
import type { adminCommandWorkflow } from '../workflows/admin-command';
import { SelfServiceCommandType, SelfServiceOrgId } from '../workflows/search-attributes';
import type { Command } from './inbound';
import type { CommandRouter, RouteContext } from './ingress';

/** Directory sync and admin changes: applied in one step by `adminCommandWorkflow`. */
const ADMIN_COMMANDS = [
  'selfservice.directory.org-upserted.v1',
  'selfservice.directory.user-upserted.v1',
  'selfservice.directory.group-upserted.v1',
  'selfservice.directory.catalog-app-upserted.v1',
  'selfservice.directory.org-app-upserted.v1',
  'selfservice.settings.update-requested.v1',
  'selfservice.technical-contact.set-requested.v1',
  'selfservice.app.self-service-configured.v1',
] as const satisfies readonly Command['type'][];

/** The worker's handler table is typed by this, so a routed type without a handler does not compile. */
export type AdminCommandType = (typeof ADMIN_COMMANDS)[number];
export const ADMIN_COMMAND_TYPES: ReadonlySet<Command['type']> = new Set(ADMIN_COMMANDS);

/** The request id is derived from the command's CloudEvent id: a redelivery maps to the same request. */
export function requestIdFor(commandId: string): string {
  return `req-${createHash('sha256').update(commandId).digest('hex').slice(0, 24)}`;
}

export function adminCommandWorkflowId(commandId: string): string {
  return `command-${commandId}`;
}

/**
 * End-user commands that each run as a workflow of their own, started (not awaited) by the ingress.
 * The workflow id is derived from the command, so a redelivery finds the existing workflow.
 */
export interface CommandWorkflow {
  workflowType: string;
  workflowId(command: Command): string;
}

export const COMMAND_WORKFLOWS: Partial<Record<Command['type'], CommandWorkflow>> = {
  'selfservice.app.requested.v1': {
    workflowType: 'appRequestWorkflow',
    workflowId: (command) => appRequestWorkflowId(requestIdFor(command.commandId)),
  },
  'selfservice.personal-app.add-requested.v1': {
    workflowType: 'personalAppAddWorkflow',
    workflowId: (command) => `personal-app-add-${command.commandId}`,
  },
  'selfservice.technical-contact.message-submitted.v1': {
    workflowType: 'technicalContactMessageWorkflow',
    workflowId: (command) => `technical-contact-message-${command.commandId}`,
  },
  'selfservice.personal-app.move-requested.v1': {
    workflowType: 'personalAppMoveWorkflow',
    workflowId: (command) => `personal-app-move-${command.commandId}`,
  },
};

/** Commands that act on a running request: carried out by an Update on its workflow. */
const REQUEST_UPDATES = {
  'selfservice.app-request.decided.v1': 'decide',
  'selfservice.app-request.cancelled.v1': 'cancel',
  'selfservice.app-request.admin-action.v1': 'administer',
} as const;

type RequestCommand = Extract<Command, { type: keyof typeof REQUEST_UPDATES }>;

function isRequestCommand(command: Command): command is RequestCommand {
  return command.type in REQUEST_UPDATES;
}

function updateInput(command: RequestCommand): DecisionInput | CancelInput | AdminActionInput {
  const { commandId } = command;
  switch (command.type) {
    case 'selfservice.app-request.decided.v1': {
      const { orgId, approverId, decision, comment } = command.data;
      return { orgId, approverId, decision, comment, commandId };
    }
    case 'selfservice.app-request.cancelled.v1':
      return { orgId: command.data.orgId, requesterId: command.data.userId, commandId };
    case 'selfservice.app-request.admin-action.v1': {
      const { orgId, actorId, action, reason } = command.data;
      return { orgId, actorId, action, reason, commandId };
    }
  }
}

export interface TemporalRouterOptions {
  client: Client;
  taskQueue: string;
  /** Records and announces the rejection of a command that no workflow took on. */
  reject: (command: Command, code: string, message: string, details?: Record<string, unknown>, audit?: AuditDraft) => Promise<void>;
  /** Whether the ledger holds a result for this command id. */
  hasResult: (commandId: string) => Promise<boolean>;
}

const HEARTBEAT_MS = 3000;

/**
 * Waits for `work`, heartbeating meanwhile so that the consumer keeps its partitions; a wait is never
 * longer than `timeoutMs`, after which a transient error is thrown and the ingress tries again.
 */
async function heartbeating<T>(work: Promise<T>, context: RouteContext, timeoutMs: number, what: string): Promise<T> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    for (;;) {
      const tick = new Promise<'tick'>((resolve) => {
        timer = setTimeout(() => resolve('tick'), HEARTBEAT_MS);
      });
      const outcome = await Promise.race([work.then((value) => ({ value })), tick]);
      clearTimeout(timer);
      if (outcome !== 'tick') return outcome.value;
      if (Date.now() - started > timeoutMs) throw new CommandWaitTimeout(`${what} did not finish within ${Math.round(timeoutMs / 1000)} s`);
      await context.heartbeat();
    }
  } finally {
    clearTimeout(timer);
    work.catch(() => undefined);
  }
}

/** A wait that ran out: transient (the worker or a service is slow or down), the ingress tries again. */
export class CommandWaitTimeout extends Error {
  override readonly name = 'CommandWaitTimeout';
  readonly code = 'ETIMEDOUT';
}

/** Outside the ingress (the CLI's import, the benchmark): nothing to keep alive. */
const QUIET: RouteContext = { repeat: false, heartbeat: async () => undefined };

/** How long the ingress waits for one admin command or Update before it asks again. */
const WAIT_TIMEOUT_MS = 60_000;

/**
 * Hands commands to Temporal. Workflow ids come from the command's CloudEvent id, so a redelivered
 * command finds its existing workflow instead of starting a second one; updates carry the command id
 * as their update id, so a redelivered decision is not applied twice.
 */
export class TemporalCommandRouter implements CommandRouter {
  constructor(private readonly options: TemporalRouterOptions) {}

  async route(command: Command, context: RouteContext): Promise<void> {
    if (ADMIN_COMMAND_TYPES.has(command.type)) {
      await this.runAdminCommand(command, context);
      return;
    }
    const workflow = COMMAND_WORKFLOWS[command.type];
    if (workflow) {
      if (context.repeat && (await this.finishedLongAgo(command, workflow))) return;
      await this.startCommandWorkflow(command, workflow);
      return;
    }
    if (isRequestCommand(command)) {
      await this.updateRequest(command, context);
      return;
    }
    await this.options.reject(command, 'UNSUPPORTED_COMMAND', `${command.type} is not handled by this version of the backend`);
  }

  /** Starts the command's workflow unless it already exists (running or finished). */
  async startCommandWorkflow(command: Command, workflow: CommandWorkflow): Promise<string> {
    const workflowId = workflow.workflowId(command);
    const orgId = 'orgId' in command.data ? command.data.orgId : undefined;
    try {
      await this.options.client.workflow.start(workflow.workflowType, {
        taskQueue: this.options.taskQueue,
        workflowId,
        args: [command],
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        workflowIdConflictPolicy: 'USE_EXISTING',
        typedSearchAttributes: new TypedSearchAttributes([
          { key: SelfServiceCommandType, value: command.type },
          ...(orgId ? [{ key: SelfServiceOrgId, value: orgId }] : []),
        ]),
        memo: { commandType: command.type, source: command.source },
      });
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
    }
    return workflowId;
  }

  /**
   * A repeated command whose workflow is gone although its result is recorded: it ran to its end and
   * Temporal has since dropped the history (Kafka keeps records longer). Starting it again would
   * re-open a closed request, so it is left alone.
   */
  private async finishedLongAgo(command: Command, workflow: CommandWorkflow): Promise<boolean> {
    const state = await describe(this.options.client.workflow.getHandle(workflow.workflowId(command)));
    return state === 'missing' && (await this.options.hasResult(command.commandId));
  }

  /** Waits for the result, so directory upserts of one org (one partition) apply in Kafka order. */
  async runAdminCommand(command: Command, context: RouteContext = QUIET): Promise<CommandResult> {
    const workflowId = await this.startCommandWorkflow(command, { workflowType: 'adminCommandWorkflow', workflowId: () => adminCommandWorkflowId(command.commandId) });
    const handle = this.options.client.workflow.getHandle<typeof adminCommandWorkflow>(workflowId);
    try {
      return await heartbeating(handle.result(), context, WAIT_TIMEOUT_MS, `command ${command.commandId}`);
    } catch (error) {
      if (!(error instanceof WorkflowFailedError)) throw error;
      // The workflow ended the command itself (INTERNAL_ERROR with its incident); make sure of a result.
      const incidentId = incidentIn(error);
      const message = `the command could not be processed and was not applied (incident ${incidentId})`;
      await this.options.reject(command, 'INTERNAL_ERROR', message, { incidentId });
      return { commandId: command.commandId, commandType: command.type, outcome: 'REJECTED', code: 'INTERNAL_ERROR', message, details: { incidentId }, eventIds: [] };
    }
  }

  /**
   * Delivers a decision, cancellation or admin action to the request's workflow. The workflow records
   * the accepted result; a refusal (the Update's validator or handler said no, or there is no such
   * pending request) is recorded here.
   */
  async updateRequest(command: RequestCommand, context: RouteContext): Promise<void> {
    const { client } = this.options;
    const workflowId = appRequestWorkflowId(command.data.requestId);
    const handle = client.workflow.getHandle(workflowId);
    try {
      const update = handle.executeUpdate(REQUEST_UPDATES[command.type], { args: [updateInput(command)], updateId: command.commandId });
      await heartbeating(update, context, WAIT_TIMEOUT_MS, `update ${command.commandId}`);
    } catch (error) {
      const refusal = error instanceof WorkflowUpdateFailedError ? applicationFailureIn(error) : null;
      if (refusal) {
        await this.options.reject(command, refusal.type ?? 'REJECTED', refusal.message, {}, refusalAudit(command, refusal.type ?? 'REJECTED'));
        return;
      }
      const state = await describe(handle);
      if (state === 'missing') {
        await this.options.reject(command, 'REQUEST_NOT_FOUND', `there is no request ${command.data.requestId}`);
        return;
      }
      if (state === 'closed') {
        await this.options.reject(command, 'REQUEST_NOT_PENDING', `request ${command.data.requestId} has ended`);
        return;
      }
      throw error;
    }
  }
}

/** An admin action that was refused is audited, as every admin attempt is. */
function refusalAudit(command: RequestCommand, code: string): AuditDraft | undefined {
  if (command.type !== 'selfservice.app-request.admin-action.v1' || code === 'REQUEST_NOT_FOUND') return undefined;
  const { orgId, actorId, action, requestId } = command.data;
  return { orgId, actorId, action: `app-request.${action.toLowerCase()}`, subject: requestId };
}

/** The incident id that a workflow failed with (see workflows/command-failure.ts), or a new one. */
function incidentIn(error: WorkflowFailedError): string {
  const cause = error.cause;
  if (cause instanceof ApplicationFailure && cause.type === 'INTERNAL_ERROR') {
    const [incidentId] = (cause.details ?? []) as unknown[];
    if (typeof incidentId === 'string') return incidentId;
  }
  return `wf-${createHash('sha256').update(error.message).digest('hex').slice(0, 12)}`;
}

/** The business refusal behind an update failure (it may be wrapped in an activity failure). */
function applicationFailureIn(error: Error): ApplicationFailure | null {
  for (let cause: unknown = error.cause; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof ApplicationFailure) return cause;
  }
  return null;
}

async function describe(handle: WorkflowHandle): Promise<'missing' | 'closed' | 'running'> {
  try {
    const description = await handle.describe();
    return description.status.name === 'RUNNING' ? 'running' : 'closed';
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return 'missing';
    throw error;
  }
}
