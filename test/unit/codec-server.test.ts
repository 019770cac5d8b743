import { request as httpRequest, createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { defaultPayloadConverter } from '@temporalio/common';
import { payloadToJSON } from '@temporalio/common/lib/proto-utils';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type KeyLike } from 'jose';
import { ConfigError, loadConfig } from '../../workers/config';
import { codecServerOptionsFromConfig, createCodecServer, jwtVerifier, type CodecServerOptions } from '../../workers/codec-server';
import { EncryptionCodec } from '../../workers/payload-codec';

/**
 * The codec server decrypts every payload for whoever may call it, so each way in is refused unless the
 * caller is verified: no service is needed, the identity provider is a JWKS endpoint in this test.
 */
const codec = new EncryptionCodec(new Map([['k1', Buffer.alloc(32, 'codec-server-test')]]), 'k1', { allowPlaintext: true });
const UI = 'http://127.0.0.1:8233';
const STATIC_TOKEN = 'a-static-token-of-at-least-32-characters';
const AUDIENCE = 'api://selfservice-codec';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** node:http rather than fetch: the test sets Host and sends bodies in pieces. */
function call(
  base: string,
  options: { method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer; chunks?: Buffer[]; host?: string } = {},
): Promise<Reply> {
  const url = new URL(options.path ?? '/decode', base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, path: url.pathname, method: options.method ?? 'POST', headers: { ...(options.host ? { host: options.host } : {}), ...options.headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    if (options.chunks) {
      for (const chunk of options.chunks) req.write(chunk);
      req.end();
    } else {
      req.end(options.body);
    }
  });
}

async function listen(server: Server, host = '127.0.0.1'): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return `http://${host}:${port}`;
}

const servers: Server[] = [];
async function start(options: CodecServerOptions, host?: string): Promise<string> {
  const server = createCodecServer(codec, options);
  servers.push(server);
  return listen(server, host);
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

const secret = { email: 'alice@acme.example' };
let encryptedBody: string;
const decodedFrom = (reply: Reply) => {
  const payload = (JSON.parse(reply.body) as { payloads: { metadata: Record<string, string>; data: string }[] }).payloads[0]!;
  return JSON.parse(Buffer.from(payload.data, 'base64').toString('utf8')) as unknown;
};
const json = (token?: string): Record<string, string> => ({ 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) });

// A tiny identity provider: a JWKS and an OpenID discovery document on loopback.
let idp: Server;
let issuer: string;
let signingKey: KeyLike;
let otherKey: KeyLike;

beforeAll(async () => {
  const [encrypted] = await codec.encode([defaultPayloadConverter.toPayload(secret)]);
  encryptedBody = JSON.stringify({ payloads: [payloadToJSON(encrypted!)] });

  const pair = await generateKeyPair('ES256');
  signingKey = pair.privateKey;
  otherKey = (await generateKeyPair('ES256')).privateKey;
  const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'idp-1', alg: 'ES256', use: 'sig' };
  idp = createServer((req, res) => {
    if (req.url === '/keys') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    if (req.url === '/.well-known/openid-configuration') {
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer, jwks_uri: `${issuer}/keys` }));
    }
    res.writeHead(404).end();
  });
  issuer = await listen(idp);
});
afterAll(async () => {
  await new Promise((resolve) => idp?.close(resolve));
});

function token(options: { key?: KeyLike; kid?: string; issuer?: string; audience?: string; expiresIn?: string | number | null; alg?: string } = {}): Promise<string> {
  let jwt = new SignJWT({ sub: 'operator@acme.example' })
    .setProtectedHeader({ alg: options.alg ?? 'ES256', kid: options.kid ?? 'idp-1' })
    .setIssuedAt()
    .setIssuer(options.issuer ?? issuer)
    .setAudience(options.audience ?? AUDIENCE);
  if (options.expiresIn !== null) jwt = jwt.setExpirationTime(options.expiresIn ?? '5m');
  return jwt.sign(options.key ?? signingKey);
}

describe('codec server: the caller is verified', () => {
  const jwtServer = (jwksUrl?: string) =>
    start({ auth: { mode: 'jwt', verify: jwtVerifier({ issuer, audience: [AUDIENCE], jwksUrl }) }, allowedOrigins: [UI] });

  test('a JWT signed by the identity provider, for this audience, decodes (key set from CODEC_JWKS_URL or from discovery)', async () => {
    for (const base of [await jwtServer(`${issuer}/keys`), await jwtServer()]) {
      const reply = await call(base, { headers: json(await token()), body: encryptedBody });
      expect(reply.status).toBe(200);
      expect(decodedFrom(reply)).toEqual(secret);
      expect(reply.headers['cache-control']).toBe('no-store');
    }
  });

  test('no token, a token that is not a JWT, and tokens signed by another key, expired, without expiry, of another issuer or audience get 401', async () => {
    const base = await jwtServer(`${issuer}/keys`);
    const none = await call(base, { headers: json(), body: encryptedBody });
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(none.body).not.toContain(secret.email);

    const forged: Record<string, string> = {
      garbage: 'not-a-jwt',
      'signed by another key': await token({ key: otherKey }),
      'signed by another key, unknown kid': await token({ key: otherKey, kid: 'attacker' }),
      expired: await token({ expiresIn: Math.floor(Date.now() / 1000) - 120 }),
      'without expiry': await token({ expiresIn: null }),
      'another issuer': await token({ issuer: 'https://attacker.example' }),
      'another audience': await token({ audience: 'api://something-else' }),
      'the static token': STATIC_TOKEN,
    };
    for (const [what, jwt] of Object.entries(forged)) {
      const reply = await call(base, { headers: json(jwt), body: encryptedBody });
      expect({ what, status: reply.status }).toEqual({ what, status: 401 });
      expect(reply.body).not.toContain(secret.email);
    }
    // An unsigned token ("alg": "none") and a symmetric one.
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', kid: 'idp-1' })).toString('base64url')}.${Buffer.from(JSON.stringify({ iss: issuer, aud: AUDIENCE, exp: 9999999999 })).toString('base64url')}.`;
    expect((await call(base, { headers: json(unsigned), body: encryptedBody })).status).toBe(401);
    const hs = await new SignJWT({}).setProtectedHeader({ alg: 'HS256', kid: 'idp-1' }).setIssuer(issuer).setAudience(AUDIENCE).setExpirationTime('5m').sign(Buffer.alloc(32, 'k'));
    expect((await call(base, { headers: json(hs), body: encryptedBody })).status).toBe(401);
  });

  test('when the key set cannot be fetched, the answer is 503, not a decode', async () => {
    const base = await start({ auth: { mode: 'jwt', verify: jwtVerifier({ issuer, audience: [AUDIENCE], jwksUrl: `${issuer}/no-such-keys` }) }, allowedOrigins: [UI] });
    const reply = await call(base, { headers: json(await token()), body: encryptedBody });
    expect(reply.status).toBe(503);
  });

  test('static token (loopback): as a bearer token or Basic password; GET /login sets the cookie the Web UI sends', async () => {
    const base = await start({ auth: { mode: 'static', token: STATIC_TOKEN }, allowedOrigins: [UI] });
    expect((await call(base, { headers: json(STATIC_TOKEN), body: encryptedBody })).status).toBe(200);
    expect((await call(base, { headers: json(`${STATIC_TOKEN}x`), body: encryptedBody })).status).toBe(401);
    expect((await call(base, { headers: json(), body: encryptedBody })).status).toBe(401);
    const basic = (password: string) => ({ ...json(), authorization: `Basic ${Buffer.from(`operator:${password}`).toString('base64')}` });
    expect((await call(base, { headers: basic(STATIC_TOKEN), body: encryptedBody })).status).toBe(200);
    expect((await call(base, { headers: basic('wrong'), body: encryptedBody })).status).toBe(401);

    const challenge = await call(base, { method: 'GET', path: '/login' });
    expect(challenge.status).toBe(401);
    expect(challenge.headers['www-authenticate']).toMatch(/^Basic realm=/);
    expect(challenge.headers['set-cookie']).toBeUndefined();
    expect((await call(base, { method: 'GET', path: '/login', headers: basic('wrong') })).status).toBe(401);
    const login = await call(base, { method: 'GET', path: '/login', headers: basic(STATIC_TOKEN) });
    expect(login.status).toBe(200);
    const setCookie = login.headers['set-cookie']?.[0] ?? '';
    expect(setCookie).toMatch(/^codec_session=[^;]+; Path=\/; HttpOnly; SameSite=Strict/);
    expect(setCookie).not.toContain(STATIC_TOKEN);
    const session = setCookie.split(';')[0]!;
    // What the Web UI sends with "include cross-origin credentials": its origin and the cookie.
    const fromUi = await call(base, { headers: { ...json(), origin: UI, cookie: session }, body: encryptedBody });
    expect(fromUi.status).toBe(200);
    expect(fromUi.headers['access-control-allow-origin']).toBe(UI);
    expect(fromUi.headers['access-control-allow-credentials']).toBe('true');
    expect(decodedFrom(fromUi)).toEqual(secret);
    expect((await call(base, { headers: { ...json(), cookie: 'codec_session=forged' }, body: encryptedBody })).status).toBe(401);
  });

  test('the login and the cookie exist only with a static token', async () => {
    const base = await start({ auth: { mode: 'jwt', verify: jwtVerifier({ issuer, audience: [AUDIENCE] }) }, allowedOrigins: [UI] });
    expect((await call(base, { method: 'GET', path: '/login' })).status).toBe(404);
  });

  const nonLoopback = Object.values(networkInterfaces())
    .flat()
    .find((address) => address && address.family === 'IPv4' && !address.internal)?.address;
  (nonLoopback ? test : test.skip)('a static token or no auth serves requests that arrive on loopback only', async () => {
    for (const auth of [{ mode: 'static', token: STATIC_TOKEN } as const, { mode: 'none' } as const]) {
      const base = await start({ auth, allowedOrigins: [UI], allowedHosts: [nonLoopback!] }, nonLoopback);
      const reply = await call(base, { headers: json(STATIC_TOKEN), body: encryptedBody });
      expect({ mode: auth.mode, status: reply.status }).toEqual({ mode: auth.mode, status: 403 });
      expect(reply.body).toMatch(/loopback only/);
    }
  });
});

describe('codec server: origins, hosts, body size, /encode', () => {
  const staticServer = (extra: Partial<CodecServerOptions> = {}) => start({ auth: { mode: 'static', token: STATIC_TOKEN }, allowedOrigins: [UI], ...extra });

  test('a browser origin that is not the Web UI gets 403, preflight included; the preflight of the UI is answered without credentials', async () => {
    const base = await staticServer();
    for (const origin of ['http://evil.example', 'null', 'http://127.0.0.1:8234']) {
      const preflight = await call(base, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' } });
      expect({ origin, status: preflight.status }).toEqual({ origin, status: 403 });
      expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
      // Even with a valid token: a page elsewhere must not use an operator's credentials.
      const post = await call(base, { headers: { ...json(STATIC_TOKEN), origin }, body: encryptedBody });
      expect({ origin, status: post.status }).toEqual({ origin, status: 403 });
      expect(post.body).not.toContain(secret.email);
    }
    const ok = await call(base, { method: 'OPTIONS', headers: { origin: UI, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, x-namespace' } });
    expect(ok.status).toBe(204);
    expect(ok.headers['access-control-allow-origin']).toBe(UI);
    expect(ok.headers['access-control-allow-credentials']).toBe('true');
    expect(ok.headers['access-control-allow-headers']).toMatch(/authorization/);
    expect(ok.headers['access-control-allow-headers']).toMatch(/x-namespace/);
  });

  test('a Host that is not this server (DNS rebinding) gets 421; no Host gets 400', async () => {
    const base = await staticServer();
    for (const host of ['evil.example', 'evil.example:8888', '127.0.0.1.nip.io:8888']) {
      const reply = await call(base, { host, headers: json(STATIC_TOKEN), body: encryptedBody });
      expect({ host, status: reply.status }).toEqual({ host, status: 421 });
    }
    for (const host of ['127.0.0.1:8888', 'localhost', 'LOCALHOST:1234', '[::1]:8888']) {
      expect((await call(base, { host, headers: json(STATIC_TOKEN), body: encryptedBody })).status).toBe(200);
    }
    // Configured hosts replace the loopback names; an entry with a port matches that port only.
    const named = await staticServer({ allowedHosts: ['codec.internal:8888'] });
    expect((await call(named, { host: 'codec.internal:8888', headers: json(STATIC_TOKEN), body: encryptedBody })).status).toBe(200);
    expect((await call(named, { host: 'codec.internal:9999', headers: json(STATIC_TOKEN), body: encryptedBody })).status).toBe(421);
    expect((await call(named, { host: '127.0.0.1', headers: json(STATIC_TOKEN), body: encryptedBody })).status).toBe(421);

    // HTTP/1.0 without a Host header.
    const { port } = new URL(base);
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = netConnect(Number(port), '127.0.0.1', () => socket.end('POST /decode HTTP/1.0\r\ncontent-length: 0\r\n\r\n'));
      let text = '';
      socket.on('data', (chunk) => (text += chunk.toString('utf8')));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.[01] 400/);
  });

  test('a body larger than the limit gets 413, whether it declares its length or not', async () => {
    const base = await staticServer({ maxBodyBytes: 2048 });
    const big = JSON.stringify({ payloads: [], padding: 'x'.repeat(4000) });
    const declared = await call(base, { headers: json(STATIC_TOKEN), body: big });
    expect(declared.status).toBe(413);
    const chunked = await call(base, { headers: { ...json(STATIC_TOKEN), 'transfer-encoding': 'chunked' }, chunks: [Buffer.from(big.slice(0, 1500)), Buffer.from(big.slice(1500))] });
    expect(chunked.status).toBe(413);
    expect((await call(base, { headers: json(STATIC_TOKEN), body: encryptedBody })).status).toBe(200);
    // Refused callers do not learn more than 401, whatever they send.
    expect((await call(base, { headers: json(), body: big })).status).toBe(401);
  });

  test('/encode is off unless enabled (404); other methods get 405; other paths 404', async () => {
    const off = await staticServer();
    const plain = JSON.stringify({ payloads: [payloadToJSON(defaultPayloadConverter.toPayload({ decision: 'APPROVE' }))] });
    expect((await call(off, { path: '/encode', headers: json(STATIC_TOKEN), body: plain })).status).toBe(404);
    expect((await call(off, { method: 'OPTIONS', path: '/encode', headers: { origin: UI } })).status).toBe(404);
    expect((await call(off, { method: 'GET', path: '/decode', headers: json(STATIC_TOKEN) })).status).toBe(405);
    expect((await call(off, { path: '/', headers: json(STATIC_TOKEN), body: plain })).status).toBe(404);

    const on = await staticServer({ enableEncode: true });
    expect((await call(on, { path: '/encode', headers: json(), body: plain })).status).toBe(401);
    const encoded = await call(on, { path: '/encode', headers: json(STATIC_TOKEN), body: plain });
    expect(encoded.status).toBe(200);
    expect(encoded.body).not.toContain(Buffer.from('APPROVE').toString('base64'));
  });

  test('a bad body gets 400 and a payload that does not decrypt 422, after the caller is verified', async () => {
    const base = await staticServer();
    expect((await call(base, { headers: json(STATIC_TOKEN), body: '{"nope":1}' })).status).toBe(400);
    const tampered = JSON.parse(encryptedBody) as { payloads: { data: string }[] };
    tampered.payloads[0]!.data = Buffer.from('x'.repeat(40)).toString('base64');
    expect((await call(base, { headers: json(STATIC_TOKEN), body: JSON.stringify(tampered) })).status).toBe(422);
  });
});

describe('codec server: settings that would expose payloads are refused at start-up', () => {
  const options = (env: Record<string, string>) => codecServerOptionsFromConfig(loadConfig(env));

  test('the local default is a static token on loopback; without a token it does not start', () => {
    expect(() => options({})).toThrow(ConfigError);
    expect(() => options({})).toThrow(/CODEC_AUTH=static needs CODEC_STATIC_TOKEN/);
    expect(options({ CODEC_STATIC_TOKEN: STATIC_TOKEN }).auth.mode).toBe('static');
    expect(options({ CODEC_STATIC_TOKEN: STATIC_TOKEN }).enableEncode).toBe(false);
    expect(() => loadConfig({ CODEC_STATIC_TOKEN: 'short' })).toThrow(/CODEC_STATIC_TOKEN: must be at least 32 characters/);
  });

  test.each(['0.0.0.0', '::', '192.0.2.10', 'codec.internal'])('a static token or no auth is refused when bound to %s', (host) => {
    expect(() => options({ CODEC_SERVER_HOST: host, CODEC_STATIC_TOKEN: STATIC_TOKEN })).toThrow(/CODEC_STATIC_TOKEN is allowed only when CODEC_SERVER_HOST is a loopback address/);
    expect(() => options({ CODEC_SERVER_HOST: host, CODEC_AUTH: 'none' })).toThrow(/CODEC_AUTH=none is allowed only when CODEC_SERVER_HOST is a loopback address/);
  });

  test('no auth is allowed on loopback; jwt needs an issuer and an audience, over https', () => {
    expect(options({ CODEC_AUTH: 'none', CODEC_SERVER_HOST: '::1' }).auth.mode).toBe('none');
    expect(() => options({ CODEC_AUTH: 'jwt', CODEC_SERVER_HOST: '0.0.0.0' })).toThrow(/needs CODEC_JWT_ISSUER and CODEC_JWT_AUDIENCE/);
    expect(() => options({ CODEC_AUTH: 'jwt', CODEC_JWT_ISSUER: 'https://idp.example', CODEC_JWT_AUDIENCE: '' })).toThrow(/CODEC_JWT_AUDIENCE/);
    expect(() => options({ CODEC_AUTH: 'jwt', CODEC_JWT_ISSUER: 'http://idp.example', CODEC_JWT_AUDIENCE: AUDIENCE })).toThrow(/CODEC_JWT_ISSUER must be an https:\/\/ URL/);
    expect(() => options({ CODEC_AUTH: 'jwt', CODEC_JWT_ISSUER: 'https://idp.example', CODEC_JWT_AUDIENCE: AUDIENCE, CODEC_JWKS_URL: 'http://idp.example/keys' })).toThrow(/CODEC_JWKS_URL must be an https:\/\/ URL/);
    const jwt = options({ CODEC_AUTH: 'jwt', CODEC_SERVER_HOST: '0.0.0.0', CODEC_JWT_ISSUER: 'https://idp.example/oauth2/default', CODEC_JWT_AUDIENCE: `${AUDIENCE}, api://other`, CODEC_JWKS_URL: '' });
    expect(jwt.auth.mode).toBe('jwt');
    expect(options({ CODEC_AUTH: 'jwt', CODEC_JWT_ISSUER: 'http://127.0.0.1:9/', CODEC_JWT_AUDIENCE: AUDIENCE }).auth.mode).toBe('jwt');
    expect(() => loadConfig({ CODEC_AUTH: 'anyone' })).toThrow(/CODEC_AUTH/);
  });

  test('the origins must be listed; body limit, hosts and /encode come from the environment', () => {
    expect(() => options({ CODEC_STATIC_TOKEN: STATIC_TOKEN, CODEC_CORS_ORIGINS: '*' })).toThrow(/CODEC_CORS_ORIGINS/);
    const configured = options({ CODEC_STATIC_TOKEN: STATIC_TOKEN, CODEC_MAX_BODY_BYTES: '65536', CODEC_ALLOWED_HOSTS: 'Codec.Internal, 127.0.0.1:8888', CODEC_ENABLE_ENCODE: 'true' });
    expect(configured).toMatchObject({ maxBodyBytes: 65536, allowedHosts: ['codec.internal', '127.0.0.1:8888'], enableEncode: true });
    expect(() => loadConfig({ CODEC_ENABLE_ENCODE: 'yes' })).toThrow(/CODEC_ENABLE_ENCODE/);
    expect(() => loadConfig({ CODEC_MAX_BODY_BYTES: '10' })).toThrow(/CODEC_MAX_BODY_BYTES/);
  });
});
