// ServiceEntry spec (istio/api networking/v1alpha3/service_entry.proto): services, ports and their endpoints.

import { isIP } from 'node:net'
import { z } from 'zod'
import { addError } from './add-error.ts'
import {
  ipOrCidrSchema,
  portNameSchema,
  portNumberSchema,
  protocolSchema,
  stringMapSchema,
  weightSchema,
} from './fields.ts'
import { wildcardDomainProblem } from './host-name.ts'
import { unsupported } from './unsupported.ts'

const UNIX_ADDRESS_PREFIX = 'unix://'

const serviceHostSchema = z.string().superRefine((host, ctx) => {
  const problem = host === '*' ? `invalid host ${host}` : wildcardDomainProblem(host)
  if (problem !== undefined) addError(ctx, problem)
})

const servicePortSchema = z.strictObject({
  number: portNumberSchema,
  protocol: protocolSchema.optional(),
  name: portNameSchema,
  targetPort: portNumberSchema.optional(),
})

/** ServiceEntry endpoints are WorkloadEntry messages. */
const workloadEntrySchema = z.strictObject({
  address: z.string(),
  /** Service port name → the port this endpoint listens on. */
  ports: z.record(z.string(), portNumberSchema).default({}),
  labels: stringMapSchema.default({}),
  /** Multi-network routing is not built. */
  network: unsupported(),
  /** `region/zone/subzone`, for locality-aware load balancing. */
  locality: z.string().optional(),
  weight: weightSchema.optional(),
  /** The workload's service account: its SPIFFE ID is what ISTIO_MUTUAL expects the endpoint to present. */
  serviceAccount: z.string().optional(),
})

export const serviceEntrySpecSchema = z
  .strictObject({
    hosts: z.array(serviceHostSchema),
    addresses: z.array(ipOrCidrSchema).default([]),
    ports: z.array(servicePortSchema).default([]),
    location: z.enum(['MESH_EXTERNAL', 'MESH_INTERNAL']).default('MESH_EXTERNAL'),
    resolution: z.enum(['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN']).default('NONE'),
    endpoints: z.array(workloadEntrySchema).default([]),
    workloadSelector: unsupported(),
    exportTo: z.array(z.string()).default([]),
    /** The identities the service's endpoints may present (checked by ISTIO_MUTUAL, SIMPLE, MUTUAL). */
    subjectAltNames: z.array(z.string()).default([]),
  })
  .superRefine((entry, ctx) => {
    if (entry.hosts.length === 0) addError(ctx, 'service entry must have at least one host', ['hosts'])

    const portNames = new Set<string>()
    const portNumbers = new Set<number>()
    entry.ports.forEach((port, index) => {
      if (portNames.has(port.name))
        addError(ctx, `port name '${port.name}' already defined`, ['ports', index, 'name'])
      if (portNumbers.has(port.number))
        addError(ctx, `port ${port.number} already defined`, ['ports', index, 'number'])
      portNames.add(port.name)
      portNumbers.add(port.number)
    })

    if (entry.resolution !== 'NONE' && entry.resolution !== 'STATIC') {
      entry.addresses.forEach((address, index) => {
        if (address.includes('/')) {
          addError(ctx, 'CIDR addresses are allowed only for NONE/STATIC resolution types', [
            'addresses',
            index,
          ])
        }
      })
    }

    if (entry.resolution === 'NONE' && entry.endpoints.length > 0) {
      addError(ctx, 'no endpoints should be provided for resolution type NONE', ['endpoints'])
    }
    if (entry.resolution === 'DNS_ROUND_ROBIN' && entry.endpoints.length > 1) {
      addError(ctx, 'there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN', ['endpoints'])
    }
    entry.endpoints.forEach((endpoint, index) => {
      const problem = endpointAddressProblem(endpoint.address, entry.resolution)
      if (problem !== undefined) addError(ctx, problem, ['endpoints', index, 'address'])
      for (const name of Object.keys(endpoint.ports)) {
        if (!portNames.has(name)) {
          addError(ctx, `endpoint port '${name}' is not defined by the service entry's ports`, [
            'endpoints',
            index,
            'ports',
            name,
          ])
        }
      }
    })
  })

function endpointAddressProblem(address: string, resolution: string): string | undefined {
  if (isIP(address) !== 0) return undefined
  if (resolution === 'STATIC') {
    if (address.startsWith(UNIX_ADDRESS_PREFIX) && address.length > UNIX_ADDRESS_PREFIX.length)
      return undefined
    return `endpoint address '${address}' is not a valid IP address (resolution STATIC)`
  }
  if (wildcardDomainProblem(address) === undefined && !address.includes('*')) return undefined
  return `endpoint address '${address}' is not a valid FQDN or an IP address`
}

export type ServiceEntrySpec = z.infer<typeof serviceEntrySpecSchema>
