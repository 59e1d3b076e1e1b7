// Scenario: security policies added or removed by a hot reload take effect on a running listener, whose filter chain follows its model.

import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { send } from './harness/client.ts'
import * as istio from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

let proxy: ProxyProcess
let app: Upstream
let ingress: number

/** security/v1beta1/authorization.proto: DENY every request to /admin. */
const denyAdmin = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: default}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin"]}}]}]
`

/** security/v1beta1/request_authentication.proto: a token must verify against an (empty) inline key set. */
const requireValidTokens = `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: default}
spec:
  jwtRules: [{issuer: "https://issuer.example", jwks: '{"keys": []}'}]
`

beforeAll(async () => {
  app = await startUpstream('app')
  ;[ingress] = await freePorts(1)
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': istio.sidecar({ ingress: [istio.loopbackIngress(ingress, app.port, 'HTTP', 'http')] }),
    },
  })
})

afterAll(async () => {
  await proxy?.stop()
  await app?.close()
})

describe('security policies across reloads', () => {
  it('an AuthorizationPolicy added by a reload denies, and removing it allows again', async () => {
    expect((await send(ingress, 'app', '/admin')).status).toBe(200)
    await proxy.writeResource('authz.yaml', denyAdmin)
    await eventually(async () => (await send(ingress, 'app', '/admin')).status === 403)
    expect((await send(ingress, 'app', '/admin')).body).toBe('RBAC: access denied')
    expect((await send(ingress, 'app', '/public')).status).toBe(200)
    await rm(join(proxy.dir, 'istio', 'authz.yaml'))
    await eventually(async () => (await send(ingress, 'app', '/admin')).status === 200)
  })

  it('a RequestAuthentication added by a reload rejects a bad token, and a request without one still passes', async () => {
    const badToken = { headers: { authorization: 'Bearer not.a.jwt' } }
    expect((await send(ingress, 'app', '/', badToken)).status).toBe(200)
    await proxy.writeResource('jwt.yaml', requireValidTokens)
    await eventually(async () => (await send(ingress, 'app', '/', badToken)).status === 401)
    expect((await send(ingress, 'app', '/')).status).toBe(200)
    await rm(join(proxy.dir, 'istio', 'jwt.yaml'))
    await eventually(async () => (await send(ingress, 'app', '/', badToken)).status === 200)
  })
})
