import { readFileSync } from 'node:fs';
import { Connection, type ConnectionOptions } from '@temporalio/client';
import { NativeConnection, type NativeConnectionOptions, type TLSConfig } from '@temporalio/worker';
import { ConfigError, type Config } from './config';

/**
 * How every process reaches the Temporal frontend: plain gRPC on the local stack; TLS, mutual TLS or a
 * Temporal Cloud API key in production (README, "Production settings: Temporal"). One function builds
 * the options, so the client (`Connection.connect`) and the worker (`NativeConnection.connect`) cannot
 * drift apart.
 *
 *   TEMPORAL_TLS=true               TLS; the server's certificate is checked against the system's CAs
 *   TEMPORAL_TLS_CA_FILE            ... or against this CA (PEM)
 *   TEMPORAL_TLS_CERT_FILE/_KEY_FILE  client certificate and key (PEM) for mutual TLS; both or neither
 *   TEMPORAL_TLS_SERVER_NAME        the name the server's certificate carries, if not TEMPORAL_ADDRESS's host
 *   TEMPORAL_API_KEY                Temporal Cloud API key, sent as `authorization: Bearer ...`; implies TLS
 *
 * TLS is on when TEMPORAL_TLS=true, or when it is unset and an API key or a TLS file is given;
 * TEMPORAL_TLS=false together with any of them is refused (a key or a certificate is never sent in clear,
 * and a TLS setting is never silently ignored).
 */
export interface TemporalConnectionSettings {
  address: string;
  /** Absent: plain gRPC. */
  tls?: TLSConfig;
  apiKey?: string;
}

type TlsVariables = Pick<
  Config,
  'TEMPORAL_ADDRESS' | 'TEMPORAL_TLS' | 'TEMPORAL_TLS_CA_FILE' | 'TEMPORAL_TLS_CERT_FILE' | 'TEMPORAL_TLS_KEY_FILE' | 'TEMPORAL_TLS_SERVER_NAME' | 'TEMPORAL_API_KEY'
>;

export function temporalConnectionSettings(config: TlsVariables, readFile: (path: string) => Buffer = readFileSync): TemporalConnectionSettings {
  const files = {
    TEMPORAL_TLS_CA_FILE: config.TEMPORAL_TLS_CA_FILE,
    TEMPORAL_TLS_CERT_FILE: config.TEMPORAL_TLS_CERT_FILE,
    TEMPORAL_TLS_KEY_FILE: config.TEMPORAL_TLS_KEY_FILE,
  };
  const tlsSettings = [...Object.entries(files), ['TEMPORAL_TLS_SERVER_NAME', config.TEMPORAL_TLS_SERVER_NAME]]
    .filter(([, value]) => value !== undefined)
    .map(([name]) => name as string);
  const wanted = [...tlsSettings, ...(config.TEMPORAL_API_KEY ? ['TEMPORAL_API_KEY'] : [])];
  if (config.TEMPORAL_TLS === false && wanted.length > 0) {
    throw new ConfigError(`TEMPORAL_TLS=false, but ${wanted.join(', ')} ${wanted.length === 1 ? 'needs' : 'need'} TLS: set TEMPORAL_TLS=true or leave it unset`);
  }
  if (Boolean(config.TEMPORAL_TLS_CERT_FILE) !== Boolean(config.TEMPORAL_TLS_KEY_FILE)) {
    throw new ConfigError('TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE go together: mutual TLS needs the client certificate and its key');
  }
  const useTls = config.TEMPORAL_TLS ?? wanted.length > 0;
  const settings: TemporalConnectionSettings = { address: config.TEMPORAL_ADDRESS };
  if (config.TEMPORAL_API_KEY) settings.apiKey = config.TEMPORAL_API_KEY;
  if (!useTls) return settings;

  const read = (variable: keyof typeof files): Buffer | undefined => {
    const path = files[variable];
    if (!path) return undefined;
    try {
      return readFile(path);
    } catch (error) {
      throw new ConfigError(`${variable}: cannot read ${path}: ${(error as Error).message}`);
    }
  };
  const tls: TLSConfig = {};
  const ca = read('TEMPORAL_TLS_CA_FILE');
  if (ca) tls.serverRootCACertificate = ca;
  const crt = read('TEMPORAL_TLS_CERT_FILE');
  const key = read('TEMPORAL_TLS_KEY_FILE');
  if (crt && key) tls.clientCertPair = { crt, key };
  if (config.TEMPORAL_TLS_SERVER_NAME) tls.serverNameOverride = config.TEMPORAL_TLS_SERVER_NAME;
  settings.tls = tls;
  return settings;
}

/** Options for the client's `Connection.connect`. */
export function clientConnectionOptions(config: TlsVariables, readFile?: (path: string) => Buffer): ConnectionOptions {
  const { address, tls, apiKey } = temporalConnectionSettings(config, readFile);
  // `tls: false` keeps the SDK from turning TLS on by itself; TLS without an API key stays explicit too.
  return { address, tls: tls ?? false, ...(apiKey ? { apiKey } : {}) };
}

/** Options for the worker's `NativeConnection.connect`. */
export function workerConnectionOptions(config: TlsVariables, readFile?: (path: string) => Buffer): NativeConnectionOptions {
  const { address, tls, apiKey } = temporalConnectionSettings(config, readFile);
  return { address, tls: tls ?? false, ...(apiKey ? { apiKey } : {}) };
}

/** What a failed connection reports besides the SDK's reason (grpc-js says only "Failed to connect before the deadline"). */
export function describeConnection(config: TlsVariables): string {
  const { address, tls, apiKey } = temporalConnectionSettings(config);
  if (!tls) return `${address} (plain gRPC${config.TEMPORAL_TLS === undefined ? '; TEMPORAL_TLS unset' : ''})`;
  const parts = [
    tls.serverRootCACertificate ? `CA ${config.TEMPORAL_TLS_CA_FILE}` : 'system CAs',
    tls.clientCertPair ? `client certificate ${config.TEMPORAL_TLS_CERT_FILE}` : 'no client certificate',
    ...(tls.serverNameOverride ? [`server name ${tls.serverNameOverride}`] : []),
    ...(apiKey ? ['API key'] : []),
  ];
  return `${address} (TLS: ${parts.join(', ')})`;
}

async function connecting<T>(config: TlsVariables, connect: () => Promise<T>): Promise<T> {
  try {
    return await connect();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot connect to Temporal at ${describeConnection(config)}: ${reason}`, { cause: error });
  }
}

export function connectClient(config: TlsVariables): Promise<Connection> {
  const options = clientConnectionOptions(config);
  return connecting(config, () => Connection.connect(options));
}

export function connectWorker(config: TlsVariables): Promise<NativeConnection> {
  const options = workerConnectionOptions(config);
  return connecting(config, () => NativeConnection.connect(options));
}
