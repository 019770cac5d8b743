import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import type { CommandResult } from '../activities/command-ledger';
import type { adminCommandWorkflow } from '../workflows/admin-command';
import { SelfServiceCommandType, SelfServiceOrgId } from '../workflows/search-attributes';
import type { Command } from './inbound';
import type { CommandRouter } from './ingress';

/** Directory sync and admin changes: applied in one step by `adminCommandWorkflow`. */
export const ADMIN_COMMAND_TYPES: ReadonlySet<Command['type']> = new Set([
  'selfservice.directory.org-upserted.v1',
  'selfservice.directory.user-upserted.v1',
  'selfservice.directory.group-upserted.v1',
  'selfservice.directory.catalog-app-upserted.v1',
  'selfservice.directory.org-app-upserted.v1',
  'selfservice.settings.update-requested.v1',
  'selfservice.technical-contact.set-requested.v1',
  'selfservice.app.self-service-configured.v1',
]);

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

export const COMMAND_WORKFLOWS: Partial<Record<Command['type'], CommandWorkflow>> = {};

export interface TemporalRouterOptions {
  client: Client;
  taskQueue: string;
  /** Called for a type that no workflow handles yet; the ingress records a rejection for it. */
  onUnsupported: (command: Command) => Promise<void>;
}

/**
 * Hands commands to Temporal. Workflow ids come from the command's CloudEvent id, so a redelivered
 * command finds its existing workflow instead of starting a second one.
 */
export class TemporalCommandRouter implements CommandRouter {
  constructor(private readonly options: TemporalRouterOptions) {}

  async route(command: Command): Promise<void> {
    if (ADMIN_COMMAND_TYPES.has(command.type)) {
      await this.runAdminCommand(command);
      return;
    }
    const workflow = COMMAND_WORKFLOWS[command.type];
    if (workflow) {
      await this.startCommandWorkflow(command, workflow);
      return;
    }
    await this.options.onUnsupported(command);
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

  /** Waits for the result, so directory upserts of one org (one partition) apply in Kafka order. */
  async runAdminCommand(command: Command): Promise<CommandResult> {
    const { client, taskQueue } = this.options;
    const workflowId = adminCommandWorkflowId(command.commandId);
    const orgId = 'orgId' in command.data ? command.data.orgId : undefined;
    try {
      const handle = await client.workflow.start<typeof adminCommandWorkflow>('adminCommandWorkflow', {
        taskQueue,
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
      return await handle.result();
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
      return await client.workflow.getHandle<typeof adminCommandWorkflow>(workflowId).result();
    }
  }
}
