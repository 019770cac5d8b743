import { ConfigError, loadConfig } from '../../workers/config';
import { clientConnectionOptions, temporalConnectionSettings, workerConnectionOptions } from '../../workers/temporal-connection';

/** Each Temporal connection variable reaches the options of both the client's and the worker's connection. */
describe('Temporal connection settings', () => {
  const files: Record<string, string> = { '/etc/t/ca.pem': 'CA PEM', '/etc/t/client.pem': 'CLIENT PEM', '/etc/t/client.key': 'CLIENT KEY' };
  const readFile = (path: string): Buffer => {
    if (!(path in files)) throw new Error(`ENOENT: no such file or directory, open '${path}'`);
    return Buffer.from(files[path]!);
  };
  const both = (env: Record<string, string>) => {
    const config = loadConfig(env);
    return [clientConnectionOptions(config, readFile), workerConnectionOptions(config, readFile)];
  };

  test('the local default is plain gRPC to 127.0.0.1:7233, TLS off explicitly (the SDK would not turn it on by itself)', () => {
    for (const options of both({})) {
      expect(options).toEqual({ address: '127.0.0.1:7233', tls: false });
    }
  });

  test('TEMPORAL_TLS=true: TLS checked against the system CAs', () => {
    for (const options of both({ TEMPORAL_ADDRESS: 'temporal.internal:7233', TEMPORAL_TLS: 'true' })) {
      expect(options).toEqual({ address: 'temporal.internal:7233', tls: {} });
    }
  });

  test('mutual TLS: the CA, the client certificate and key, and the server name reach the options', () => {
    const env = {
      TEMPORAL_TLS: 'true',
      TEMPORAL_TLS_CA_FILE: '/etc/t/ca.pem',
      TEMPORAL_TLS_CERT_FILE: '/etc/t/client.pem',
      TEMPORAL_TLS_KEY_FILE: '/etc/t/client.key',
      TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
    };
    for (const options of both(env)) {
      expect(options.tls).toEqual({
        serverRootCACertificate: Buffer.from('CA PEM'),
        clientCertPair: { crt: Buffer.from('CLIENT PEM'), key: Buffer.from('CLIENT KEY') },
        serverNameOverride: 'temporal.internal',
      });
      expect(options).not.toHaveProperty('apiKey');
    }
    // Unset TEMPORAL_TLS with TLS files means TLS.
    const { TEMPORAL_TLS: _unset, ...implied } = env;
    for (const options of both(implied)) expect(options.tls).toMatchObject({ serverNameOverride: 'temporal.internal' });
  });

  test('an API key (Temporal Cloud) is sent as the API key and implies TLS', () => {
    for (const options of both({ TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233', TEMPORAL_API_KEY: 'cloud-key' })) {
      expect(options).toEqual({ address: 'ns.acct.tmprl.cloud:7233', tls: {}, apiKey: 'cloud-key' });
    }
    for (const options of both({ TEMPORAL_API_KEY: 'cloud-key', TEMPORAL_TLS_CA_FILE: '/etc/t/ca.pem' })) {
      expect(options).toEqual({ address: '127.0.0.1:7233', tls: { serverRootCACertificate: Buffer.from('CA PEM') }, apiKey: 'cloud-key' });
    }
  });

  test('settings that would send a key or certificate in clear, or half a client identity, are refused with the variable named', () => {
    const settings = (env: Record<string, string>) => () => temporalConnectionSettings(loadConfig(env), readFile);
    expect(settings({ TEMPORAL_TLS: 'false', TEMPORAL_API_KEY: 'k' })).toThrow(ConfigError);
    expect(settings({ TEMPORAL_TLS: 'false', TEMPORAL_API_KEY: 'k' })).toThrow(/TEMPORAL_TLS=false, but TEMPORAL_API_KEY needs TLS/);
    expect(settings({ TEMPORAL_TLS: 'false', TEMPORAL_TLS_CA_FILE: '/etc/t/ca.pem' })).toThrow(/TEMPORAL_TLS_CA_FILE needs TLS/);
    expect(settings({ TEMPORAL_TLS_CERT_FILE: '/etc/t/client.pem' })).toThrow(/TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE go together/);
    expect(settings({ TEMPORAL_TLS_KEY_FILE: '/etc/t/client.key' })).toThrow(/go together/);
    expect(settings({ TEMPORAL_TLS_CA_FILE: '/etc/t/missing.pem' })).toThrow(/TEMPORAL_TLS_CA_FILE: cannot read \/etc\/t\/missing.pem/);
    expect(() => loadConfig({ TEMPORAL_TLS: 'yes' })).toThrow(/TEMPORAL_TLS/);
  });
});
