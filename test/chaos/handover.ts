import { Client, Connection } from '@temporalio/client';
import type { Kafka } from 'kafkajs';
import { loadConfig } from '../../workers/config';
import { dataConverterFor } from '../../workers/payload-codec';

/**
 * When the ingress handed each request over to Temporal: the start time of every request workflow of
 * the org (the router starts them with the org as a search attribute). A request sent after a fault
 * began can only start once Kafka, the ingress and Temporal all work again.
 */
export async function requestWorkflowStarts(env: NodeJS.ProcessEnv, orgId: string): Promise<Map<string, number>> {
  const config = loadConfig(env);
  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  try {
    const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE, dataConverter: dataConverterFor(config) });
    const starts = new Map<string, number>();
    const query = `WorkflowType = 'appRequestWorkflow' AND SelfServiceOrgId = '${orgId}'`;
    for await (const workflow of client.workflow.list({ query })) starts.set(workflow.workflowId, workflow.startTime.getTime());
    return starts;
  } finally {
    await connection.close();
  }
}

/** The member ids of a consumer group now. */
export async function groupMembers(kafka: Kafka, groupId: string): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { groups } = await admin.describeGroups([groupId]);
    return (groups[0]?.members ?? []).map((member) => member.memberId);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * Watches the ingress's consumer group after its member was killed: when did the group settle with a
 * new member alone? (A killed member stays in the group until its session times out, and the group
 * cannot finish a rebalance without it.) Resolves with a sentence for the report.
 */
export async function watchConsumerGroup(kafka: Kafka, groupId: string, oldMembers: string[], killedAt: number, timeoutMs = 90_000): Promise<string> {
  const admin = kafka.admin();
  await admin.connect();
  const seen: string[] = [];
  const describe = (state: string, members: string[]) =>
    `${state} [${members.map((id) => (oldMembers.includes(id) ? 'killed member' : 'new member')).join(', ')}]`;
  try {
    while (Date.now() - killedAt < timeoutMs) {
      const { groups } = await admin.describeGroups([groupId]);
      const group = groups[0];
      const members = (group?.members ?? []).map((member) => member.memberId);
      const state = describe(group?.state ?? 'unknown', members);
      if (seen[seen.length - 1]?.split(' @')[0] !== state) seen.push(`${state} @${((Date.now() - killedAt) / 1000).toFixed(1)} s`);
      if (group?.state === 'Stable' && members.length === 1 && !oldMembers.includes(members[0]!)) {
        return `consumer group ${groupId} after the kill: ${seen.join(' -> ')}`;
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    return `consumer group ${groupId} after the kill: ${seen.join(' -> ')} (not settled within ${timeoutMs / 1000} s)`;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
