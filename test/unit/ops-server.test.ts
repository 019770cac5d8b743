import { randomUUID } from 'node:crypto';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Registry } from 'prom-client';
import { encodeCloudEvent } from '../../events/cloudevents';
import type { InboundRecord } from '../../events/dead-letters';
import { topicsFor } from '../../events/topics';
import { createCodecServer } from '../../workers/codec-server';
import { handleRecords, type CommandRouter, type IngressDependencies } from '../../workers/ingress';
import { createIngressMetrics, createRelayMetrics } from '../../workers/metrics';
import { closeServer, createOpsServer, newProcessRegistry, OpsEndpoints, PROMETHEUS_CONTENT_TYPE, startOpsServer } from '../../workers/ops-server';
import { EncryptionCodec } from '../../workers/payload-codec';

/** The per-process ops endpoint (GET /metrics, /livez, /readyz) and the ingress's counts, without services. */

async function listening(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('ops endpoint', () => {
  let server: Server;
  let base: string;
  let ready: Record<string, boolean>;
  let endpoints: OpsEndpoints;
  let registry: Registry;

  beforeEach(async () => {
    ready = { 'kafka-consumer-group': true, database: true };
    registry = newProcessRegistry('ingress');
    const metrics = createIngressMetrics(registry);
    metrics.record('selfservice.directory.v1', 'valid');
    metrics.rejection('MALFORMED_EVENT');
    endpoints = new OpsEndpoints({ registry, readiness: () => ready, extraMetrics: () => Promise.resolve('# TYPE temporal_sdk_probe counter\ntemporal_sdk_probe 1\n') });
    server = createOpsServer(endpoints);
    base = await listening(server);
  });
  afterEach(() => closeServer(server));

  test('/livez answers 200 while the process loop runs', async () => {
    const response = await fetch(`${base}/livez`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('ok\n');
  });

  test('/readyz is 200 while every dependency is connected, 503 when one is not, and 503 as soon as shutdown begins', async () => {
    let response = await fetch(`${base}/readyz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ready: true, checks: { 'kafka-consumer-group': true, database: true } });

    ready = { ...ready, database: false };
    response = await fetch(`${base}/readyz`);
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ ready: false, checks: { 'kafka-consumer-group': true, database: false } });

    ready = { ...ready, database: true };
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    endpoints.beginShutdown();
    response = await fetch(`${base}/readyz`);
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ ready: false, checks: { 'not-shutting-down': false } });
    // Still alive while it drains.
    expect((await fetch(`${base}/livez`)).status).toBe(200);
  });

  test('a readiness check that throws counts as not ready', async () => {
    const failing = createOpsServer(new OpsEndpoints({ registry: new Registry(), readiness: () => Promise.reject(new Error('down')) }));
    const url = await listening(failing);
    try {
      expect((await fetch(`${url}/readyz`)).status).toBe(503);
    } finally {
      await closeServer(failing);
    }
  });

  test('/metrics is Prometheus text with our metrics, Node process metrics and the appended SDK text', async () => {
    const response = await fetch(`${base}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(PROMETHEUS_CONTENT_TYPE);
    const text = await response.text();
    expect(text).toContain('# TYPE selfservice_ingress_records_total counter');
    expect(text).toContain('selfservice_ingress_records_total{topic="selfservice.directory.v1",outcome="valid",process="ingress"} 1');
    expect(text).toContain('selfservice_ingress_rejections_total{code="MALFORMED_EVENT",process="ingress"} 1');
    expect(text).toContain('# TYPE selfservice_ingress_handling_seconds histogram');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    expect(text).toContain('temporal_sdk_probe 1');
  });

  test('other paths and methods are 404', async () => {
    expect((await fetch(`${base}/decode`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(404);
  });

  test('port 0 turns the endpoint off; a port in use is logged and the process goes on', async () => {
    expect(await startOpsServer(endpoints, { host: '127.0.0.1', port: 0, name: 'test' })).toBeNull();
    const taken = createNetServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const lines: string[] = [];
    try {
      const port = (taken.address() as AddressInfo).port;
      expect(await startOpsServer(endpoints, { host: '127.0.0.1', port, name: 'test', log: (line) => lines.push(line) })).toBeNull();
      expect(lines.join('\n')).toMatch(/ops endpoint not started on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  test('relay gauges: backlog and the age of the oldest row, per namespace', async () => {
    const relayRegistry = new Registry();
    const relay = createRelayMetrics(relayRegistry, 'ns.');
    relay.backlog({ count: 7, oldestAgeSeconds: 12.5 });
    relay.published(3);
    const text = await relayRegistry.metrics();
    expect(text).toContain('selfservice_outbox_backlog{namespace="ns."} 7');
    expect(text).toContain('selfservice_outbox_oldest_age_seconds{namespace="ns."} 12.5');
    expect(text).toContain('selfservice_outbox_published_total{namespace="ns."} 3');
    expect(text).toContain('selfservice_outbox_publish_failures_total{namespace="ns."} 0');
  });
});

describe('the codec server answers the ops paths on its own port', () => {
  test('without a token, with no CORS headers, while /decode still needs its token', async () => {
    const codec = new EncryptionCodec(new Map([['k1', Buffer.alloc(32, 'ops-test')]]), 'k1', { allowPlaintext: true });
    const ops = new OpsEndpoints({ registry: newProcessRegistry('codec-server'), readiness: () => ({ listening: true }) });
    const server = createCodecServer(codec, { auth: { mode: 'static', token: 'a-static-token-of-at-least-32-characters' }, allowedOrigins: ['http://127.0.0.1:8233'], ops });
    const base = await listening(server);
    try {
      for (const path of ['/livez', '/readyz', '/metrics']) {
        const response = await fetch(`${base}${path}`);
        expect({ path, status: response.status }).toEqual({ path, status: 200 });
        expect(response.headers.get('access-control-allow-origin')).toBeNull();
      }
      expect((await fetch(`${base}/decode`, { method: 'POST', body: '{"payloads":[]}' })).status).toBe(401);
      ops.beginShutdown();
      expect((await fetch(`${base}/readyz`)).status).toBe(503);
    } finally {
      await closeServer(server);
    }
  });
});

describe('the ingress on stop: what it finished is resolved, what it had not begun is left for the next member', () => {
  const topics = topicsFor('');
  const record = (offset: number, type: string, data: Record<string, unknown>): InboundRecord => {
    const event = encodeCloudEvent({ specversion: '1.0', id: randomUUID(), source: 'urn:test', type, time: new Date().toISOString(), data }, 'org-1');
    return { topic: topics.directory, partition: 0, offset: String(offset), key: event.key === null ? null : Buffer.from(event.key), value: event.value, headers: event.headers as InboundRecord['headers'] };
  };

  test('records are counted and timed by kind; a stop between groups resolves only the finished ones', async () => {
    const registry = new Registry();
    const metrics = createIngressMetrics(registry);
    let running = true;
    const applied: number[] = [];
    const router: CommandRouter = {
      kindOf: (command) => (command.type.includes('org-upserted') ? 'update' : 'apply'),
      route: () => {
        running = false; // SIGTERM arrives while this record is handled
        return Promise.resolve();
      },
      apply: (commands) => {
        applied.push(commands.length);
        return Promise.resolve();
      },
    };
    const deps: IngressDependencies = {
      topics,
      router,
      ledger: { claim: () => Promise.resolve('new'), claimAll: (claims) => Promise.resolve(claims.map(() => 'new' as const)), reject: () => Promise.resolve() },
      deadLetters: { send: () => Promise.resolve() },
      isTransient: () => false,
      metrics,
    };
    const user = (offset: number) =>
      record(offset, 'selfservice.directory.user-upserted.v1', { orgId: 'org-1', userId: `u-${offset}`, email: `u${offset}@org-1.example`, displayName: 'U', status: 'ACTIVE', adminRoles: [] });
    const org = (offset: number) => record(offset, 'selfservice.directory.org-upserted.v1', { orgId: 'org-1', name: 'Org', emailDomains: ['org-1.example'] });
    const records = [user(0), user(1), org(2), user(3), user(4)];
    const resolved: string[] = [];
    await handleRecords(records, deps, () => Promise.resolve(), (offset) => resolved.push(offset), () => running);

    // Records 0-1 (one group) and 2 (the record in hand at the stop) are done and resolved; 3-4 are not begun.
    expect(applied).toEqual([2]);
    expect(resolved).toEqual(['1', '2']);
    const text = await registry.metrics();
    expect(text).toContain(`selfservice_ingress_records_total{topic="${topics.directory}",outcome="valid"} 3`);
    expect(text).toMatch(/selfservice_ingress_handling_seconds_count\{kind="apply"\} 2/);
    expect(text).toMatch(/selfservice_ingress_handling_seconds_count\{kind="update"\} 1/);
  });
});
