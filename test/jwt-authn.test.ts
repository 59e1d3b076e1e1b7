// Scenario: RequestAuthentication on an inbound listener: tokens signed here with jose, keys served by a real local HTTPS JWKS server.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer as createHttpsServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { createServer as createTcpServer, type Socket, type Server as TcpServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Reply, send } from './harness/client.ts'
import { ingressSidecar } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { testCa } from './harness/tls-ca.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>

const ISSUER = 'https://issuer.example'
const COOKIE_ISSUER = 'cookie-issuer'
const DOWN_ISSUER = 'down-issuer'
const SLOW_ISSUER = 'slow-issuer'

let proxy: ProxyProcess
let port: number
let app: Upstream
let jwksServer: Server
let blackhole: TcpServer
const held: Socket[] = []
let servedKeys: JWK[] = []
let caDir: string
let rsa: KeyPair
let ec: KeyPair
let impostor: KeyPair
let cookieKey: KeyPair

async function publicJwk(pair: KeyPair, kid: string, alg: string): Promise<JWK> {
  return { ...(await exportJWK(pair.publicKey)), kid, alg, use: 'sig' }
}

async function sign(
  pair: KeyPair,
  alg: 'RS256' | 'ES256',
  kid: string,
  claims: JWTPayload,
  expiresIn: string | number = '5m',
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg, kid })
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(pair.privateKey)
}

const good = (claims: JWTPayload = {}) =>
  sign(rsa, 'RS256', 'rsa-1', { iss: ISSUER, sub: 'alice', aud: 'reviews', ...claims })

function get(path: string, headers: Record<string, string> = {}): Promise<Reply> {
  return send(port, `127.0.0.1:${port}`, path, { headers })
}

/** The headers the app received with the last request. */
function lastSeenHeaders(): Record<string, string | string[] | undefined> {
  return app.seen[app.seen.length - 1].headers
}

beforeAll(async () => {
  ;[rsa, ec, impostor, cookieKey] = await Promise.all([
    generateKeyPair('RS256'),
    generateKeyPair('ES256'),
    generateKeyPair('RS256'),
    generateKeyPair('ES256'),
  ])
  servedKeys = [await publicJwk(rsa, 'rsa-1', 'RS256'), await publicJwk(ec, 'ec-1', 'ES256')]

  const ca = testCa('jwks-ca')
  const serverCert = ca.issue('localhost', ['IP:127.0.0.1', 'DNS:localhost'])
  caDir = mkdtempSync(join(tmpdir(), 'outrigger-jwks-ca-'))
  writeFileSync(join(caDir, 'ca.pem'), ca.cert)
  jwksServer = createHttpsServer({ key: serverCert.key, cert: serverCert.cert }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ keys: servedKeys }))
  })
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve))
  const jwksPort = (jwksServer.address() as AddressInfo).port
  // Accepts connections and never answers: a JWKS server that hangs.
  blackhole = createTcpServer((socket) => held.push(socket))
  await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve))
  const blackholePort = (blackhole.address() as AddressInfo).port
  const [closedPort] = await freePorts(1)

  app = await startUpstream('app')
  ;[port] = await freePorts(1)
  const cookieJwks = JSON.stringify({ keys: [await publicJwk(cookieKey, 'c-1', 'ES256')] })
  proxy = await startProxy({
    labels: { app: 'reviews' },
    env: { NODE_EXTRA_CA_CERTS: join(caDir, 'ca.pem') },
    extraBootstrap: 'jwksRefreshInterval: 500ms\n',
    resources: {
      'sidecar.yaml': ingressSidecar(port, app.port),
      'jwt.yaml': `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: reviews-jwt, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  jwtRules:
  - issuer: ${ISSUER}
    audiences: [reviews]
    jwksUri: https://127.0.0.1:${jwksPort}/jwks.json
    outputPayloadToHeader: x-jwt-payload
    outputClaimToHeaders:
    - {header: x-team, claim: org.team}
    - {header: x-level, claim: level}
  - issuer: ${COOKIE_ISSUER}
    jwks: '${cookieJwks}'
    fromHeaders: [{name: x-token, prefix: 'Token '}]
    fromParams: [tok]
    fromCookies: [session]
    forwardOriginalToken: true
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: mesh-jwt, namespace: istio-system}
spec:
  jwtRules:
  - issuer: ${DOWN_ISSUER}
    jwksUri: https://127.0.0.1:${closedPort}/jwks.json
    fromHeaders: [{name: x-down}]
  - issuer: ${SLOW_ISSUER}
    jwksUri: https://127.0.0.1:${blackholePort}/jwks.json
    fromHeaders: [{name: x-slow}]
    timeout: 300ms
`,
    },
  })
})

afterAll(async () => {
  await proxy?.stop()
  await app?.close()
  for (const socket of held) socket.destroy()
  blackhole?.close()
  jwksServer?.closeAllConnections()
  jwksServer?.close()
  if (caDir !== undefined) rmSync(caDir, { recursive: true, force: true })
})

function expectRefused(reply: Reply, status: number, body: string, path = '/'): void {
  expect({ status: reply.status, body: reply.body }).toEqual({ status, body })
  // Envoy's jwt_authn onComplete: the realm is the original URI.
  expect(reply.headers['www-authenticate']).toBe(
    `Bearer realm="http://127.0.0.1:${port}${path}", error="invalid_token"`,
  )
}

describe('RequestAuthentication (Envoy jwt_authn as Istio configures it)', () => {
  it('passes a request without a token unauthenticated (allow_missing)', async () => {
    const reply = await get('/open')
    expect(reply.status).toBe(200)
    expect(lastSeenHeaders()['x-jwt-payload']).toBeUndefined()
  })

  it('accepts an RS256 token from the remote JWKS; the header is removed and the outputs set', async () => {
    const token = await good({ org: { team: 'blue' }, level: 3 })
    const reply = await get('/private', { authorization: `Bearer ${token}` })
    expect(reply.status).toBe(200)
    const seen = lastSeenHeaders()
    // forwardOriginalToken defaults to false: Envoy removes the token's header before the app.
    expect(seen.authorization).toBeUndefined()
    expect(seen['x-jwt-payload']).toBe(token.split('.')[1])
    expect(JSON.parse(Buffer.from(String(seen['x-jwt-payload']), 'base64url').toString())).toMatchObject({
      iss: ISSUER,
      sub: 'alice',
    })
    expect(seen['x-team']).toBe('blue')
    expect(seen['x-level']).toBe('3')
  })

  it('accepts an ES256 token, and a token in the access_token query parameter (a default location)', async () => {
    const es = await sign(ec, 'ES256', 'ec-1', { iss: ISSUER, sub: 'bob', aud: ['other', 'reviews'] })
    expect((await get('/', { authorization: `Bearer ${es}` })).status).toBe(200)
    expect((await get(`/q?access_token=${await good()}`)).status).toBe(200)
  })

  it('refuses a bad signature, an expired token, an unknown issuer and garbage with 401', async () => {
    const forged = await sign(impostor, 'RS256', 'rsa-1', { iss: ISSUER, sub: 'mallory', aud: 'reviews' })
    expectRefused(await get('/a', { authorization: `Bearer ${forged}` }), 401, 'Jwt verification fails', '/a')
    const claims = { iss: ISSUER, sub: 'alice', aud: 'reviews' }
    // Past Envoy's 60 s clock skew.
    const expired = await sign(rsa, 'RS256', 'rsa-1', claims, Math.floor(Date.now() / 1000) - 120)
    expectRefused(
      await get('/b?x=1', { authorization: `Bearer ${expired}` }),
      401,
      'Jwt is expired',
      '/b?x=1',
    )
    const stranger = await sign(rsa, 'RS256', 'rsa-1', { iss: 'https://elsewhere', sub: 'eve' })
    expectRefused(
      await get('/', { authorization: `Bearer ${stranger}` }),
      401,
      'Jwt issuer is not configured',
    )
    expectRefused(
      await get('/', { authorization: 'Bearer not-a-jwt' }),
      401,
      'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
    )
    const unknownKid = await sign(impostor, 'RS256', 'rsa-9', { iss: ISSUER, sub: 'x', aud: 'reviews' })
    expectRefused(
      await get('/', { authorization: `Bearer ${unknownKid}` }),
      401,
      "Jwks doesn't have key to match kid or alg from Jwt",
    )
  })

  it('refuses a token for another audience with 403, as Envoy does', async () => {
    const reply = await get('/', { authorization: `Bearer ${await good({ aud: 'ratings' })}` })
    expectRefused(reply, 403, 'Audiences in Jwt are not allowed')
  })

  it('reads a custom header with a prefix, a query parameter and a cookie; forwardOriginalToken keeps the header', async () => {
    const token = await sign(cookieKey, 'ES256', 'c-1', { iss: COOKIE_ISSUER, sub: 'carol' })
    expect((await get('/', { 'x-token': `Token ${token}` })).status).toBe(200)
    expect(lastSeenHeaders()['x-token']).toBe(`Token ${token}`)
    expect((await get(`/p?tok=${token}`)).status).toBe(200)
    expect((await get('/', { cookie: `theme=dark; session=${token}` })).status).toBe(200)
    // The cookie rule does not read Authorization: there the token's issuer is unknown.
    expectRefused(await get('/', { authorization: `Bearer ${token}` }), 401, 'Jwt issuer is not configured')
    expectRefused(await get('/', { cookie: 'session=garbage' }), 401, expect.any(String) as unknown as string)
  })

  it('passes a CORS preflight without looking at its token (bypass_cors_preflight)', async () => {
    const reply = await send(port, `127.0.0.1:${port}`, '/', {
      method: 'OPTIONS',
      headers: {
        origin: 'https://example.com',
        'access-control-request-method': 'GET',
        authorization: 'Bearer garbage',
      },
    })
    expect(reply.status).toBe(200)
  })

  it('JWKS unreachable: tokenless requests pass at once, tokened ones get 401 "Jwks remote fetch is failed"', async () => {
    const start = performance.now()
    expect((await get('/')).status).toBe(200)
    expect(performance.now() - start).toBeLessThan(200)
    const down = await sign(rsa, 'RS256', 'rsa-1', { iss: DOWN_ISSUER, sub: 'dan' })
    expectRefused(await get('/', { 'x-down': down }), 401, 'Jwks remote fetch is failed')
  })

  it('JWKS server that hangs: a tokened request waits at most the rule timeout, others do not wait', async () => {
    const slow = await sign(rsa, 'RS256', 'rsa-1', { iss: SLOW_ISSUER, sub: 'sam' })
    const start = performance.now()
    const [tokened, tokenless] = await Promise.all([
      get('/', { 'x-slow': slow }),
      (async () => {
        const t0 = performance.now()
        const reply = await get('/')
        return { reply, ms: performance.now() - t0 }
      })(),
    ])
    const elapsed = performance.now() - start
    expectRefused(tokened, 401, 'Jwks remote fetch is failed')
    // It joins the fetch in flight (300ms timeout), if any, or starts one.
    expect(elapsed).toBeLessThan(1500)
    expect(tokenless.reply.status).toBe(200)
    expect(tokenless.ms).toBeLessThan(200)
  })

  it('picks up a rotated key at the next refresh, and keeps the keys it has while the server is down', async () => {
    const next = await generateKeyPair('RS256')
    const rotated = await sign(next, 'RS256', 'rsa-2', { iss: ISSUER, sub: 'alice', aud: 'reviews' })
    expect((await get('/', { authorization: `Bearer ${rotated}` })).status).toBe(401)
    servedKeys = [await publicJwk(next, 'rsa-2', 'RS256')]
    await eventually(async () => (await get('/', { authorization: `Bearer ${rotated}` })).status === 200)
    // The old key left the set.
    expect((await get('/', { authorization: `Bearer ${await good()}` })).status).toBe(401)
    jwksServer.closeAllConnections()
    await new Promise<void>((resolve) => jwksServer.close(() => resolve()))
    await new Promise((resolve) => setTimeout(resolve, 1200))
    // Refreshes fail now; as istiod's resolver, the last key set stays.
    expect((await get('/', { authorization: `Bearer ${rotated}` })).status).toBe(200)
    expect(proxy.stderr()).toContain('fetch failed')
  })
})
