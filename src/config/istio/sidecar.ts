// Sidecar spec (istio/api networking/v1alpha3/sidecar.proto): the ingress and egress listeners of a workload's proxy.

import { z } from 'zod'
import { addError } from './add-error.ts'
import {
  ipAddressSchema,
  portNameSchema,
  portNumberSchema,
  protocolSchema,
  stringMapSchema,
} from './fields.ts'
import { isDnsLabel, wildcardDomainProblem } from './host-name.ts'
import { serverTlsSettingsSchema } from './server-tls-settings.ts'
import { unsupported } from './unsupported.ts'

const UNIX_ADDRESS_PREFIX = 'unix://'
const LOOPBACK_OR_ANY_HOSTS = new Set(['127.0.0.1', '0.0.0.0', '::1', '::'])

/** An ingress listener's port; `targetPort` (deprecated in istio/api) is the application's port. */
const ingressPortSchema = z.strictObject({
  number: portNumberSchema,
  protocol: protocolSchema.optional(),
  name: portNameSchema.optional(),
  targetPort: portNumberSchema.optional(),
})

/** An egress listener's port; Istio rejects `targetPort` here. */
const egressPortSchema = z
  .strictObject({
    number: portNumberSchema,
    protocol: protocolSchema.optional(),
    name: portNameSchema.optional(),
    targetPort: z.number().optional(),
  })
  .superRefine((port, ctx) => {
    if (port.targetPort !== undefined)
      addError(ctx, 'targetPort has no impact on Sidecar egress listeners', ['targetPort'])
  })

const captureModeSchema = z.enum(['DEFAULT', 'IPTABLES', 'NONE']).default('DEFAULT')

/** Where an ingress listener forwards: `127.0.0.1:<port>`, `0.0.0.0:<port>`, `[::1]:<port>`, `[::]:<port>` or `unix://<path>`. */
const defaultEndpointSchema = z.string().superRefine((endpoint, ctx) => {
  if (endpoint.startsWith(UNIX_ADDRESS_PREFIX)) {
    if (endpoint.length === UNIX_ADDRESS_PREFIX.length) addError(ctx, 'unix address must not be empty')
    return
  }
  const match = /^(?:\[([^\]]*)\]|([^:]*)):([^:]*)$/.exec(endpoint)
  if (match === null) {
    addError(ctx, `defaultEndpoint '${endpoint}' must be of form host:port`)
    return
  }
  const host = match[1] ?? match[2]
  const port = match[3]
  if (host !== '' && !LOOPBACK_OR_ANY_HOSTS.has(host)) {
    addError(
      ctx,
      'defaultEndpoint must be of form 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:<port>, [::]:<port>, unix://<path> or unset',
    )
  }
  const portNumber = Number(port)
  if (!/^[0-9]+$/.test(port) || portNumber < 1 || portNumber > 65535) {
    addError(ctx, `defaultEndpoint port '${port}' must be a number in the range 1..65535`)
  }
})

/** An egress host: `namespace/dnsName`, where namespace is `*`, `.`, `~`-prefixed or a name. */
const egressHostSchema = z.string().superRefine((host, ctx) => {
  const slash = host.indexOf('/')
  if (slash < 0) {
    addError(ctx, `host '${host}' must be of form namespace/dnsName`)
    return
  }
  const namespace = host.slice(0, slash)
  const dnsName = host.slice(slash + 1)
  if (namespace === '' || dnsName === '') {
    addError(ctx, `namespace and dnsName in host '${host}' cannot be empty`)
    return
  }
  const bareNamespace = namespace.replace(/^~/, '')
  if (bareNamespace !== '*' && bareNamespace !== '.' && !isDnsLabel(bareNamespace)) {
    addError(ctx, `invalid namespace value '${namespace}' in host '${host}'`)
  }
  if (dnsName === '*') return
  if (!dnsName.includes('.')) addError(ctx, `host '${host}': short names (non FQDN) are not allowed`)
  else {
    const problem = wildcardDomainProblem(dnsName)
    if (problem !== undefined) addError(ctx, problem)
    else if (dnsName.slice(1).includes('*')) addError(ctx, `host '${host}': partial wildcard is not allowed`)
  }
})

const ingressListenerSchema = z
  .strictObject({
    port: ingressPortSchema,
    bind: ipAddressSchema.optional(),
    captureMode: captureModeSchema,
    defaultEndpoint: defaultEndpointSchema.optional(),
    tls: serverTlsSettingsSchema.optional(),
    connectionPool: unsupported(),
  })
  .superRefine((ingress, ctx) => {
    // As Istio: TLS is terminated on HTTPS ports (served as HTTP after) and TLS ports (served as TCP after).
    const protocol = ingress.port.protocol
    if (ingress.tls !== undefined && protocol !== 'HTTPS' && protocol !== 'TLS')
      addError(ctx, 'server cannot have TLS settings for non HTTPS/TLS ports', ['tls'])
  })

const egressListenerSchema = z
  .strictObject({
    port: egressPortSchema.optional(),
    bind: ipAddressSchema.optional(),
    captureMode: captureModeSchema,
    hosts: z.array(egressHostSchema),
  })
  .superRefine((egress, ctx) => {
    if (egress.hosts.length === 0) addError(ctx, 'egress listener must contain at least one host', ['hosts'])
  })

export const sidecarSpecSchema = z
  .strictObject({
    workloadSelector: z.strictObject({ labels: stringMapSchema.default({}) }).optional(),
    ingress: z.array(ingressListenerSchema).default([]),
    egress: z.array(egressListenerSchema).default([]),
    inboundConnectionPool: unsupported(),
    outboundTrafficPolicy: z
      .strictObject({
        mode: z.enum(['REGISTRY_ONLY', 'ALLOW_ANY']).default('REGISTRY_ONLY'),
        egressProxy: unsupported(),
      })
      .optional(),
  })
  .superRefine((sidecar, ctx) => {
    if (
      sidecar.ingress.length === 0 &&
      sidecar.egress.length === 0 &&
      sidecar.outboundTrafficPolicy === undefined
    ) {
      addError(ctx, 'sidecar must configure ingress, egress or outboundTrafficPolicy')
    }

    const ingressPorts = new Set<number>()
    sidecar.ingress.forEach((ingress, index) => {
      if (ingressPorts.has(ingress.port.number)) {
        addError(ctx, `ingress port ${ingress.port.number} is already used by another ingress listener`, [
          'ingress',
          index,
          'port',
          'number',
        ])
      }
      ingressPorts.add(ingress.port.number)
    })

    const egressPorts = new Set<number>()
    sidecar.egress.forEach((egress, index) => {
      if (egress.port === undefined) {
        if (index !== sidecar.egress.length - 1) {
          addError(ctx, 'the egress listener without a port (the catch-all) must be the last one', [
            'egress',
            index,
          ])
        }
        return
      }
      if (egressPorts.has(egress.port.number)) {
        addError(ctx, `egress port ${egress.port.number} is already used by another egress listener`, [
          'egress',
          index,
          'port',
          'number',
        ])
      }
      egressPorts.add(egress.port.number)
    })
  })

export type SidecarSpec = z.infer<typeof sidecarSpecSchema>
export type IngressListener = SidecarSpec['ingress'][number]
export type EgressListener = SidecarSpec['egress'][number]
