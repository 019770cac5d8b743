import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { JSONToPayload, payloadToJSON, type JSONPayload } from '@temporalio/common/lib/proto-utils';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { ConfigError, loadConfig, type Config } from './config';
import { componentLogger, configureLogging, logLine } from './logger';
import { codecFromConfig } from './payload-codec';
import { newProcessRegistry, OpsEndpoints } from './ops-server';
import { Counter } from 'prom-client';

/**
 * The remote codec endpoint the Temporal Web UI calls to show encrypted payloads in clear to operators
 * (`temporal server start-dev --ui-codec-endpoint http://127.0.0.1:8888`). POST /decode (and /encode, when
 * CODEC_ENABLE_ENCODE=true) take and return `{ payloads: [...] }` in Temporal's JSON form.
 *
 * Whoever can call /decode reads every name, email and comment in the histories, and whoever can call
 * /encode can make inputs the worker accepts; so every request passes, in this order:
 *   - the Host header is one of CODEC_ALLOWED_HOSTS (DNS rebinding)               else 421 (400 without Host)
 *   - a browser's Origin is one of CODEC_CORS_ORIGINS, preflights included        else 403
 *   - POST /decode, or POST /encode when enabled                                  else 404 / 405
 *   - the caller is verified (CODEC_AUTH):                                         else 401
 *       jwt     a bearer token signed by a key of CODEC_JWKS_URL (or of the issuer's discovery document),
 *               with CODEC_JWT_ISSUER, one of CODEC_JWT_AUDIENCE and an expiry (the Web UI forwards the
 *               operator's access token when its codec settings say "pass access token")
 *       static  CODEC_STATIC_TOKEN as a bearer token, a Basic password or the session cookie that
 *               GET /login sets (the Web UI sends cookies with "include cross-origin credentials");
 *               loopback only
 *       none    nobody is checked; loopback only
 *     (static and none refuse requests that did not arrive on a loopback address: 403)
 *   - the body is at most CODEC_MAX_BODY_BYTES                                     else 413
 * Payloads that are not encrypted are shown as they are (decoding for display forges nothing).
 */

export type CodecAuth =
  | { mode: 'jwt'; verify: (token: string) => Promise<void> }
  | { mode: 'static'; token: string }
  | { mode: 'none' };

export interface CodecServerOptions {
  auth: CodecAuth;
  /** Browser origins (the Web UI's) allowed to call; other origins get 403. */
  allowedOrigins: string[];
  /** Host header values answered: `host` (any port) or `host:port`. Default: the loopback names. */
  allowedHosts?: string[];
  maxBodyBytes?: number;
  enableEncode?: boolean;
  /** Where refusals are reported (never with a token). */
  log?: (line: string) => void;
  /**
   * GET /metrics, /livez and /readyz (workers/ops-server.ts): answered before any check, without
   * authentication or CORS headers; they carry no payload.
   */
  ops?: OpsEndpoints;
  /** Told the status of every other answer (for the metrics). */
  onResponse?: (status: number) => void;
}

export const LOOPBACK_HOSTS = ['127.0.0.1', 'localhost', '[::1]'];
const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
const SESSION_COOKIE = 'codec_session';
const KEY_SET_FAILURES = new Set(['ERR_JOSE_GENERIC', 'ERR_JWKS_TIMEOUT', 'ERR_JWKS_INVALID']);
const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

/** A token was presented and is not valid (401), as opposed to the verifier being unable to check (503). */
export class CodecAuthError extends Error {
  override readonly name = 'CodecAuthError';
}

export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const host = address.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host === '::1') return true;
  const v4 = host.startsWith('::ffff:') ? host.slice(7) : host;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/** `Host: name[:port]` -> [name, name:port], lower case; IPv6 names keep their brackets. */
function hostOf(header: string): { name: string; full: string } {
  const full = header.trim().toLowerCase();
  const match = /^(\[[^\]]*\]|[^:]*)(?::\d+)?$/.exec(full);
  return { name: match?.[1] ?? full, full };
}

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();
const sameSecret = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));
const sessionValue = (token: string) => createHmac('sha256', token).update('selfservice-codec-session-v1').digest('base64url');

function cookie(request: IncomingMessage, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}

/** The credentials a request carries: a bearer token, or a Basic password. */
function credentials(request: IncomingMessage): { bearer?: string; basicPassword?: string } {
  const header = request.headers.authorization ?? '';
  const [scheme, value] = [header.slice(0, header.indexOf(' ')).toLowerCase(), header.slice(header.indexOf(' ') + 1).trim()];
  if (scheme === 'bearer' && value) return { bearer: value };
  if (scheme === 'basic' && value) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    return { basicPassword: decoded.slice(decoded.indexOf(':') + 1) };
  }
  return {};
}

/**
 * Verifies bearer tokens as JWTs: signature by a key of the JWKS (CODEC_JWKS_URL, or `jwks_uri` of the
 * issuer's `/.well-known/openid-configuration`), issuer, one of the audiences, an expiry, asymmetric
 * algorithms only.
 */
export function jwtVerifier(options: { issuer: string; audience: string[]; jwksUrl?: string; clockToleranceSeconds?: number }): (token: string) => Promise<void> {
  let keys: JWTVerifyGetKey | undefined;
  const keySet = async (): Promise<JWTVerifyGetKey> => {
    if (keys) return keys;
    let jwksUrl = options.jwksUrl;
    if (!jwksUrl) {
      const discovery = `${options.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
      const response = await fetch(discovery, { signal: AbortSignal.timeout(5000) });
      if (!response.ok) throw new Error(`the issuer's discovery document ${discovery} answered ${response.status}`);
      const document = (await response.json()) as { issuer?: string; jwks_uri?: string };
      if (document.issuer !== options.issuer) throw new Error(`the discovery document at ${discovery} names issuer ${String(document.issuer)}`);
      if (!document.jwks_uri) throw new Error(`the discovery document at ${discovery} has no jwks_uri`);
      jwksUrl = document.jwks_uri;
    }
    keys = createRemoteJWKSet(new URL(jwksUrl), { timeoutDuration: 5000 });
    return keys;
  };
  return async (token) => {
    const getKey = await keySet();
    try {
      await jwtVerify(token, getKey, {
        issuer: options.issuer,
        audience: options.audience,
        algorithms: ASYMMETRIC_ALGORITHMS,
        requiredClaims: ['exp'],
        clockTolerance: options.clockToleranceSeconds ?? 30,
      });
    } catch (error) {
      // The key set could not be fetched or read: nothing is known about the token (503, not 401).
      if (!(error instanceof joseErrors.JOSEError) || KEY_SET_FAILURES.has(error.code)) throw error;
      throw new CodecAuthError(error.code);
    }
  };
}

export function createCodecServer(codec: PayloadCodec, options: CodecServerOptions): Server;
/** @deprecated No caller verification: loopback only. Pass CodecServerOptions. */
export function createCodecServer(codec: PayloadCodec, allowedOrigins: string[]): Server;
export function createCodecServer(codec: PayloadCodec, optionsOrOrigins: CodecServerOptions | string[]): Server {
  const options: CodecServerOptions = Array.isArray(optionsOrOrigins) ? { auth: { mode: 'none' }, allowedOrigins: optionsOrOrigins } : optionsOrOrigins;
  const { auth, allowedOrigins } = options;
  const allowedHosts = (options.allowedHosts?.length ? options.allowedHosts : LOOPBACK_HOSTS).map((host) => host.toLowerCase());
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const log = options.log ?? (() => undefined);

  const refuse = (request: IncomingMessage, response: ServerResponse, status: number, message: string, headers: Record<string, string> = {}) => {
    log(`codec-server: ${status} ${request.method ?? '?'} ${request.url ?? '?'}: ${message}`);
    // Closing the connection means a refused request's body is never read.
    response.writeHead(status, { 'content-type': 'text/plain', connection: 'close', ...headers }).end(message);
  };

  /** Reads the body up to the limit; null when it is larger (the response is then sent). */
  const readBody = async (request: IncomingMessage): Promise<string | null> => {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of request) {
      size += (chunk as Buffer).length;
      if (size > maxBodyBytes) return null;
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  };

  const authenticate = async (request: IncomingMessage): Promise<{ ok: true } | { ok: false; status: number; message: string }> => {
    if (auth.mode === 'none') return { ok: true };
    const { bearer, basicPassword } = credentials(request);
    if (auth.mode === 'static') {
      const session = cookie(request, SESSION_COOKIE);
      if (bearer !== undefined && sameSecret(bearer, auth.token)) return { ok: true };
      if (basicPassword !== undefined && sameSecret(basicPassword, auth.token)) return { ok: true };
      if (session !== undefined && sameSecret(session, sessionValue(auth.token))) return { ok: true };
      return { ok: false, status: 401, message: bearer || basicPassword || session ? 'the token is not valid' : 'a bearer token is required' };
    }
    if (!bearer) return { ok: false, status: 401, message: 'a bearer token is required' };
    try {
      await auth.verify(bearer);
      return { ok: true };
    } catch (error) {
      if (error instanceof CodecAuthError) return { ok: false, status: 401, message: `the token is not valid (${error.message})` };
      log(`codec-server: cannot verify tokens: ${(error as Error).message}`);
      return { ok: false, status: 503, message: 'cannot verify tokens now' };
    }
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    if (options.ops && (await options.ops.handle(request, response))) return;
    if (options.onResponse) response.once('finish', () => options.onResponse?.(response.statusCode));
    // DNS rebinding: a page of another site whose name resolves to this address sends its own Host.
    const hostHeader = request.headers.host;
    if (!hostHeader) return refuse(request, response, 400, 'a Host header is required');
    const host = hostOf(hostHeader);
    if (!allowedHosts.includes(host.name) && !allowedHosts.includes(host.full)) {
      return refuse(request, response, 421, `this server does not answer for host ${host.full}`);
    }

    const origin = request.headers.origin;
    if (origin !== undefined && !allowedOrigins.includes(origin)) return refuse(request, response, 403, `origin ${origin} is not allowed`);
    if (origin) {
      response.setHeader('Access-Control-Allow-Origin', origin);
      response.setHeader('Access-Control-Allow-Credentials', 'true');
      response.setHeader('Vary', 'Origin');
    }

    const path = new URL(request.url ?? '/', 'http://codec.invalid').pathname;
    if ((auth.mode === 'static' || auth.mode === 'none') && !isLoopbackAddress(request.socket.localAddress)) {
      return refuse(request, response, 403, `CODEC_AUTH=${auth.mode} serves loopback only`);
    }
    if (path === '/login' && auth.mode === 'static' && request.method === 'GET') return login(request, response);

    const operation = path === '/decode' ? 'decode' : path === '/encode' && options.enableEncode ? 'encode' : null;
    if (!operation) return refuse(request, response, 404, options.enableEncode ? 'POST /decode or /encode' : 'POST /decode (/encode is off)');
    if (request.method === 'OPTIONS') {
      response
        .writeHead(204, {
          'Access-Control-Allow-Methods': 'POST, OPTIONS',
          'Access-Control-Allow-Headers': 'content-type, x-namespace, authorization, authorization-extras',
          'Access-Control-Max-Age': '600',
        })
        .end();
      return;
    }
    if (request.method !== 'POST') return refuse(request, response, 405, `POST /${operation}`, { allow: 'POST, OPTIONS' });

    const verdict = await authenticate(request);
    if (!verdict.ok) {
      return refuse(request, response, verdict.status, verdict.message, verdict.status === 401 ? { 'www-authenticate': 'Bearer realm="codec-server"' } : {});
    }

    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > maxBodyBytes) return refuse(request, response, 413, `the body is larger than ${maxBodyBytes} bytes`);
    let payloads: Payload[];
    try {
      const text = await readBody(request);
      if (text === null) return refuse(request, response, 413, `the body is larger than ${maxBodyBytes} bytes`);
      const body = JSON.parse(text) as { payloads?: JSONPayload[] };
      if (!Array.isArray(body.payloads)) throw new Error('the body must be { "payloads": [...] }');
      payloads = body.payloads.map((payload) => JSONToPayload(payload));
    } catch (error) {
      return refuse(request, response, 400, `bad request: ${(error as Error).message}`);
    }
    try {
      const result = await codec[operation](payloads);
      response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify({ payloads: result.map(payloadToJSON) }));
    } catch (error) {
      refuse(request, response, 422, `cannot ${operation}: ${(error as Error).message}`);
    }
  };

  /**
   * Static mode, for the Web UI on this machine: the UI cannot send a static bearer token, but it sends
   * cookies when its codec setting "include cross-origin credentials" is on. An operator opens
   * http://127.0.0.1:8888/login once and gives the token as the password; the cookie then goes with the
   * UI's requests (same site: 127.0.0.1, whatever the port).
   */
  const login = (request: IncomingMessage, response: ServerResponse): void => {
    if (auth.mode !== 'static') return;
    const { bearer, basicPassword } = credentials(request);
    const presented = bearer ?? basicPassword;
    if (presented === undefined || !sameSecret(presented, auth.token)) {
      return refuse(request, response, 401, 'sign in with the codec token as the password (npm start wrote it to .stack/codec-token)', {
        'www-authenticate': 'Basic realm="selfservice codec server", charset="UTF-8"',
      });
    }
    response
      .writeHead(200, {
        'content-type': 'text/plain',
        'cache-control': 'no-store',
        'set-cookie': `${SESSION_COOKIE}=${sessionValue(auth.token)}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200`,
      })
      .end('Signed in for 12 hours. In the Temporal Web UI (http://127.0.0.1:8233), turn on "include cross-origin credentials" in the codec server settings.\n');
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      log(`codec-server: 500: ${(error as Error).message}`);
      if (!response.headersSent) response.writeHead(500);
      response.end();
    });
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  return server;
}

/** The server's options from the config; refuses settings that would expose payloads (ConfigError). */
export function codecServerOptionsFromConfig(config: Config, log?: (line: string) => void): CodecServerOptions {
  const loopback = isLoopbackAddress(config.CODEC_SERVER_HOST);
  if (config.CODEC_CORS_ORIGINS.some((origin) => origin === '*' || origin === 'null')) {
    throw new ConfigError('CODEC_CORS_ORIGINS must list the Web UI origins; "*" and "null" are refused');
  }
  let auth: CodecAuth;
  switch (config.CODEC_AUTH) {
    case 'none':
      if (!loopback) throw new ConfigError(`CODEC_AUTH=none is allowed only when CODEC_SERVER_HOST is a loopback address, not ${config.CODEC_SERVER_HOST}: use CODEC_AUTH=jwt`);
      auth = { mode: 'none' };
      break;
    case 'static':
      if (!config.CODEC_STATIC_TOKEN) {
        throw new ConfigError('CODEC_AUTH=static needs CODEC_STATIC_TOKEN (at least 32 characters: openssl rand -base64 32; npm start writes one to .stack/codec-token)');
      }
      if (!loopback) throw new ConfigError(`CODEC_STATIC_TOKEN is allowed only when CODEC_SERVER_HOST is a loopback address, not ${config.CODEC_SERVER_HOST}: use CODEC_AUTH=jwt`);
      auth = { mode: 'static', token: config.CODEC_STATIC_TOKEN };
      break;
    case 'jwt': {
      const { CODEC_JWT_ISSUER: issuer, CODEC_JWT_AUDIENCE: audience, CODEC_JWKS_URL: jwksUrl } = config;
      if (!issuer || audience.length === 0) throw new ConfigError('CODEC_AUTH=jwt needs CODEC_JWT_ISSUER and CODEC_JWT_AUDIENCE (CODEC_JWKS_URL defaults to the issuer\'s jwks_uri)');
      for (const [variable, value] of [['CODEC_JWT_ISSUER', issuer], ['CODEC_JWKS_URL', jwksUrl]] as const) {
        if (!value) continue;
        const url = URL.parse(value);
        if (!url || (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackAddress(url.hostname)))) {
          throw new ConfigError(`${variable} must be an https:// URL (http:// only on loopback), not ${value}`);
        }
      }
      auth = { mode: 'jwt', verify: jwtVerifier({ issuer, audience, jwksUrl: jwksUrl || undefined }) };
      break;
    }
  }
  return {
    auth,
    allowedOrigins: config.CODEC_CORS_ORIGINS,
    allowedHosts: config.CODEC_ALLOWED_HOSTS,
    maxBodyBytes: config.CODEC_MAX_BODY_BYTES,
    enableEncode: config.CODEC_ENABLE_ENCODE,
    log,
  };
}

async function main(): Promise<void> {
  const config = loadConfig();
  configureLogging(config);
  const log = componentLogger('codec-server');
  const options = codecServerOptionsFromConfig(config, logLine(log, 'warn'));
  // Decoding for display: payloads written before encryption are shown as they are; one that does not
  // decrypt is answered 422.
  const registry = newProcessRegistry('codec-server');
  const responses = new Counter({ name: 'selfservice_codec_responses_total', help: 'Answers of the codec server (ops paths excepted), by HTTP status', labelNames: ['status'], registers: [registry] });
  const ops: OpsEndpoints = new OpsEndpoints({ registry, readiness: () => ({ listening: server.listening }) });
  const server: Server = createCodecServer(codecFromConfig(config, { allowPlaintext: true, onRefused: 'throw' }), {
    ...options,
    ops,
    onResponse: (status) => responses.inc({ status: String(status) }),
  });
  server.listen(config.CODEC_SERVER_PORT, config.CODEC_SERVER_HOST, () => {
    log.info(
      `codec-server: listening on http://${config.CODEC_SERVER_HOST}:${config.CODEC_SERVER_PORT} for ${config.CODEC_CORS_ORIGINS.join(', ')} ` +
        `(auth ${config.CODEC_AUTH}, /encode ${config.CODEC_ENABLE_ENCODE ? 'on' : 'off'})`,
    );
  });
  const stop = () => {
    ops.beginShutdown();
    server.close();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    componentLogger('codec-server').fatal(`codec-server: failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
}
