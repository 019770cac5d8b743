import { randomBytes, randomUUID } from 'node:crypto';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { bundleWorkflowCode } from '@temporalio/worker';
import { parseTraceparent } from '../../events/trace-context';
import { requestIdFor } from '../../rules/identifiers';
import { appRequestWorkflowId } from '../../rules/app-request';
import { WORKFLOW_TRACING_MODULE } from '../../workers/tracing';
import { startTestBackend, type TestBackend } from '../support/backend';
import { CommandClient, seedOrg } from '../support/commands';
import { resultFor, sendCommand, TopicProbe } from '../support/kafka-probe';
import { uniqueId } from '../support/test-config';

/**
 * One trace from the Kafka record to the outbound events: the backend wired in-process with tracing on
 * (an in-memory exporter in place of OTLP), an auto-granted app request sent with a traceparent of the
 * producer's, and every part of its way found in that trace: the ingress's span, Temporal's workflow
 * and activity spans, the relay's producer spans, and the traceparent on the events that come out.
 */
describe('tracing (OpenTelemetry, CloudEvents distributed-tracing extension)', () => {
  let backend: TestBackend;
  let probe: TopicProbe;
  let commands: CommandClient;
  const exporter = new InMemorySpanExporter();

  beforeAll(async () => {
    const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), workflowInterceptorModules: [WORKFLOW_TRACING_MODULE] });
    backend = await startTestBackend({ tracing: { exporter, workflowBundle: { code } } });
    probe = await TopicProbe.start(backend.kafka, [backend.topics.commandResults, backend.topics.accessRequests, backend.topics.dashboard]);
    commands = new CommandClient(backend, probe);
  });

  afterAll(async () => {
    await probe?.stop();
    await backend?.stop();
  });

  async function spansOf(traceId: string, expected: readonly string[], timeoutMs = 20_000): Promise<ReadableSpan[]> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const spans = exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId);
      const names = new Set(spans.map((span) => span.name));
      if (expected.every((name) => names.has(name)) || Date.now() > until) return spans;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  test('an auto-granted request is one trace, from the inbound traceparent to the dashboard event', async () => {
    const org = await seedOrg(commands, { users: ['requester'] });
    const appId = uniqueId('app');
    await commands.directory('org-app-upserted', { orgId: org.orgId, appId, label: `Expenses ${appId}`, signOnMode: 'SAML', status: 'ACTIVE' });
    await commands.accepted('adminCommands', 'selfservice.app.self-service-configured.v1', {
      orgId: org.orgId,
      actorId: org.superAdminId,
      appId,
      config: { requestsEnabled: true, approvalRequired: false },
    });

    const traceId = randomBytes(16).toString('hex');
    const producerSpanId = randomBytes(8).toString('hex');
    const commandId = randomUUID();
    const requestId = requestIdFor(commandId);
    const type = 'selfservice.app.requested.v1';
    await sendCommand(backend.producer, backend.topics.userRequests, type, { orgId: org.orgId, userId: org.user('requester'), appId }, {
      id: commandId,
      traceparent: `00-${traceId}-${producerSpanId}-01`,
      tracestate: 'producer=t61rcWkgMzE',
    });

    const dashboard = await probe.waitFor(
      (record) => record.type === 'selfservice.dashboard.app-assigned.v1' && record.data.requestId === requestId,
      'the dashboard event',
      60_000,
    );
    const result = await probe.waitFor(resultFor(commandId), 'the result');
    const grant = await probe.waitFor((record) => record.type === 'selfservice.app.access_request.grant.v1' && record.data.requestId === requestId, 'the grant event');
    expect(result.type).toBe('selfservice.command.accepted.v1');
    for (const record of [dashboard, result, grant]) expect(parseTraceparent(record.headers.ce_traceparent)?.traceId).toBe(traceId);
    await backend.client.workflow.getHandle(appRequestWorkflowId(requestId)).result();

    const ns = backend.config.KAFKA_TOPIC_NAMESPACE;
    const expected = [
      `ingress ${type}`,
      'StartWorkflow:appRequestWorkflow',
      'RunWorkflow:appRequestWorkflow',
      'StartActivity:submitAppRequest',
      'RunActivity:submitAppRequest',
      'RunActivity:recordRequestChange',
      `publish ${ns}selfservice.dashboard.v1`,
      `publish ${ns}selfservice.command-results.v1`,
    ];
    const spans = await spansOf(traceId, expected);
    const names = spans.map((span) => span.name);
    expect(expected.filter((name) => !names.includes(name))).toEqual([]);

    // The ingress's span is the child of the producer's; the dashboard event carries its own producer span.
    const ingress = spans.find((span) => span.name === `ingress ${type}`)!;
    expect(ingress.parentSpanId).toBe(producerSpanId);
    expect(ingress.attributes['selfservice.command_id']).toBe(commandId);
    const publish = spans.find((span) => span.name === `publish ${ns}selfservice.dashboard.v1` && span.attributes['cloudevents.event_id'] === dashboard.id)!;
    expect(parseTraceparent(dashboard.headers.ce_traceparent)?.spanId).toBe(publish.spanContext().spanId);
    // Every span of the trace hangs off one root: the producer's span (spans that name a parent we did not export have it as parent).
    const ids = new Set(spans.map((span) => span.spanContext().spanId));
    const orphans = spans.filter((span) => span.parentSpanId && !ids.has(span.parentSpanId) && span.parentSpanId !== producerSpanId);
    expect(orphans.map((span) => span.name)).toEqual([]);
    // No personal data in span attributes: ids, types and topics only.
    const attributes = JSON.stringify(spans.map((span) => span.attributes));
    expect(attributes).not.toContain(org.email('requester'));
    expect(attributes).not.toContain('@');
  });

  test('an invalid traceparent is ignored, not a refusal: the command runs in a trace of its own', async () => {
    const org = await seedOrg(commands, { users: ['requester'] });
    const commandId = randomUUID();
    await sendCommand(backend.producer, backend.topics.userRequests, 'selfservice.app.requested.v1', { orgId: org.orgId, userId: org.user('requester'), appId: 'app-missing' }, {
      id: commandId,
      traceparent: '00-00000000000000000000000000000000-0000000000000000-01',
    });
    const result = await probe.waitFor(resultFor(commandId), 'the result');
    expect(result.data).toMatchObject({ code: 'APP_NOT_FOUND' });
    const traceparent = parseTraceparent(result.headers.ce_traceparent);
    expect(traceparent).not.toBeNull();
    expect(traceparent?.traceId).not.toBe('0'.repeat(32));
  });
});
