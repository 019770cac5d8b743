import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { Connection } from '@temporalio/client';
import { loadConfig, type Config } from '../../workers/config';
import { clientConnectionOptions, connectClient, connectWorker } from '../../workers/temporal-connection';
import { testConfig } from '../support/test-config';

/**
 * Mutual TLS to Temporal, for real. The local dev server (Temporal CLI 1.5.1 `server start-dev`) has no TLS
 * flags, so the test puts a TLS terminator in front of it: a Node TLS server on a free port that asks for
 * a client certificate signed by the test's CA, negotiates HTTP/2 (ALPN h2) and pipes the bytes to the dev
 * server's plain gRPC port. The client (`Connection.connect`, grpc-js) and the worker (`NativeConnection.connect`,
 * the Rust core) connect through it with the options built from the TEMPORAL_TLS_* variables; a client
 * certificate from another CA, no certificate, another CA for the server or the wrong server name fail.
 */
describe('Temporal over mutual TLS', () => {
  let dir: string;
  let proxy: TlsServer;
  let proxyAddress: string;
  const clients: string[] = [];
  let upstream: string;

  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  /** A P-256 key and a certificate signed by `ca` (or self-signed when `ca` is absent). */
  function certificate(name: string, subject: string, extensions: string, ca?: string) {
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`);
    writeFileSync(path.join(dir, `${name}.ext`), extensions);
    if (!ca) {
      openssl('req', '-x509', '-new', '-key', `${name}.key`, '-subj', subject, '-days', '1', '-out', `${name}.pem`, '-extensions', 'v3', '-config', `${name}.ext`);
      return;
    }
    openssl('req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '1', '-out', `${name}.pem`, '-extfile', `${name}.ext`);
  }
  const file = (name: string) => path.join(dir, name);

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'temporal-tls-'));
    const caExtensions = '[req]\ndistinguished_name=dn\n[dn]\n[v3]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n';
    certificate('ca', '/CN=selfservice test CA', caExtensions);
    certificate('rogue-ca', '/CN=someone else', caExtensions);
    // The server's certificate names temporal.test only: connecting to 127.0.0.1 needs TEMPORAL_TLS_SERVER_NAME.
    certificate('server', '/CN=temporal.test', 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:temporal.test\n', 'ca');
    const clientExtensions = 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:selfservice-worker\n';
    certificate('client', '/CN=selfservice-worker', clientExtensions, 'ca');
    certificate('rogue-client', '/CN=selfservice-worker', clientExtensions, 'rogue-ca');
  });

  beforeAll(async () => {
    upstream = testConfig().TEMPORAL_ADDRESS;
    const [host, port] = upstream.split(':') as [string, string];
    proxy = createTlsServer(
      {
        key: readFileSync(file('server.key')),
        cert: readFileSync(file('server.pem')),
        ca: readFileSync(file('ca.pem')),
        requestCert: true,
        rejectUnauthorized: true,
        ALPNProtocols: ['h2'],
      },
      (socket: TLSSocket) => {
        clients.push(String(socket.getPeerCertificate().subject?.CN));
        const backend = netConnect(Number(port), host);
        socket.pipe(backend).pipe(socket);
        const close = () => {
          socket.destroy();
          backend.destroy();
        };
        socket.on('error', close);
        backend.on('error', close);
      },
    );
    proxy.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    proxyAddress = `127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => proxy?.close(resolve));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const config = (env: Record<string, string>): Config =>
    loadConfig({ TEMPORAL_ADDRESS: proxyAddress, TEMPORAL_NAMESPACE: testConfig().TEMPORAL_NAMESPACE, ...env });
  const good = () => ({
    TEMPORAL_TLS: 'true',
    TEMPORAL_TLS_CA_FILE: file('ca.pem'),
    TEMPORAL_TLS_CERT_FILE: file('client.pem'),
    TEMPORAL_TLS_KEY_FILE: file('client.key'),
    TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
  });

  test('the client and the worker connect with the certificates from TEMPORAL_TLS_*, and the server saw the client certificate', async () => {
    const settings = config(good());
    const connection = await connectClient(settings);
    try {
      const info = await connection.workflowService.getSystemInfo({});
      expect(info.serverVersion).toBeTruthy();
      const namespace = await connection.workflowService.describeNamespace({ namespace: settings.TEMPORAL_NAMESPACE });
      expect(namespace.namespaceInfo?.name).toBe(settings.TEMPORAL_NAMESPACE);
    } finally {
      await connection.close();
    }
    const native = await connectWorker(settings);
    try {
      const info = await native.workflowService.getSystemInfo({});
      expect(info.serverVersion).toBeTruthy();
    } finally {
      await native.close();
    }
    expect(clients.length).toBeGreaterThanOrEqual(2);
    expect(new Set(clients)).toEqual(new Set(['selfservice-worker']));
  });

  /** [what, settings, what the worker (Rust core) reports]; grpc-js reports only a deadline. */
  const refusals: [string, () => Record<string, string>, RegExp][] = [
    [
      'a client certificate from another CA',
      () => ({ ...good(), TEMPORAL_TLS_CERT_FILE: file('rogue-client.pem'), TEMPORAL_TLS_KEY_FILE: file('rogue-client.key') }),
      /transport error|connection closed|close_notify/,
    ],
    ['no client certificate', () => ({ TEMPORAL_TLS: 'true', TEMPORAL_TLS_CA_FILE: file('ca.pem'), TEMPORAL_TLS_SERVER_NAME: 'temporal.test' }), /transport error|cancel|connection closed/],
    ['the server checked against another CA', () => ({ ...good(), TEMPORAL_TLS_CA_FILE: file('rogue-ca.pem') }), /InvalidCertificate\(UnknownIssuer\)/],
    ['a server name the certificate does not carry', () => ({ ...good(), TEMPORAL_TLS_SERVER_NAME: 'other.test' }), /NotValidForName/],
    ['plain gRPC to the TLS port', () => ({ TEMPORAL_TLS: 'false' }), /transport error|broken pipe|connection/i],
  ];

  test.each(refusals)('the client is refused with %s', async (_what, env) => {
    const before = clients.length;
    await expect(Connection.connect({ ...clientConnectionOptions(config(env())), connectTimeout: '3s' })).rejects.toThrow(/Failed to connect before the deadline/);
    expect(clients.length).toBe(before);
  });

  test.each(refusals)('the worker is refused with %s', async (_what, env, reason) => {
    const before = clients.length;
    await expect(
      (async () => {
        const native = await connectWorker(config(env()));
        // Under TLS 1.3 a refused client certificate is reported after the handshake: on the first call.
        try {
          await native.workflowService.getSystemInfo({});
        } finally {
          await native.close();
        }
      })(),
    ).rejects.toThrow(reason);
    expect(clients.length).toBe(before);
  });

  test('a refused connection names the address and the TLS settings it used', async () => {
    const settings = config({ ...good(), TEMPORAL_TLS_CA_FILE: file('rogue-ca.pem') });
    const failure = connectWorker(settings);
    await expect(failure).rejects.toThrow(`cannot connect to Temporal at ${proxyAddress} (TLS: CA ${file('rogue-ca.pem')}, client certificate ${file('client.pem')}, server name temporal.test)`);
    await expect(failure).rejects.toThrow(/UnknownIssuer/);
  });
});
