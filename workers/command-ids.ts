import type { Command } from '../events/inbound';
import { appRequestWorkflowId } from '../rules/app-request';
import { requestOf, routeOf } from './command-catalog';
import type { LogFields } from './logger';

/**
 * The ids a log line about a command carries: its id and type, and the request and workflow it
 * concerns where the catalog knows them (a request's start, a decision, a cancellation, an admin
 * action; a workflow of its own). Ids only, never the command's data.
 */
export function commandIds(command: Command): LogFields {
  const fields: LogFields = { commandId: command.commandId, commandType: command.type };
  try {
    if (command.type === 'selfservice.app.requested.v1') return { ...fields, ...requestOf(command) };
    const route = routeOf(command);
    if (route.kind === 'update') {
      const requestId = route.requestId(command);
      return { ...fields, requestId, workflowId: appRequestWorkflowId(requestId) };
    }
    if (route.kind === 'workflow') return { ...fields, workflowId: route.workflowId(command) };
  } catch {
    // A log line never fails its command.
  }
  return fields;
}
