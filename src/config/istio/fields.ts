// Field schemas shared by the Istio kinds: ports, protocols, port names, durations, addresses, weights, label maps.

import { isIP } from 'node:net'
import { z } from 'zod'
import { parseDurationMs } from '../duration.ts'
import { addError } from './add-error.ts'
import { isDnsLabel } from './host-name.ts'

export const portNumberSchema = z.number().superRefine((port, ctx) => {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    addError(ctx, `port number ${port} must be in the range 1..65535`)
  }
})

/** Protocols Istio knows for a port (istio/istio pkg/config/protocol), uppercased. */
export const PROTOCOLS = [
  'HTTP',
  'HTTPS',
  'HTTP2',
  'GRPC',
  'GRPC-WEB',
  'HTTP_PROXY',
  'TCP',
  'TLS',
  'UDP',
  'MONGO',
  'REDIS',
  'MYSQL',
] as const

export type Protocol = (typeof PROTOCOLS)[number]

function isProtocol(name: string): name is Protocol {
  return (PROTOCOLS as readonly string[]).includes(name)
}

/** A port protocol, case-insensitive as in Istio; the output is uppercase (`http` becomes `HTTP`). */
export const protocolSchema = z
  .string()
  .superRefine((protocol, ctx) => {
    if (!isProtocol(protocol.toUpperCase())) {
      addError(ctx, `unsupported protocol '${protocol}' (expected one of ${PROTOCOLS.join(', ')})`)
    }
  })
  .transform((protocol) => protocol.toUpperCase() as Protocol)

export const portNameSchema = z.string().superRefine((name, ctx) => {
  if (!isDnsLabel(name)) addError(ctx, `invalid port name '${name}'`)
})

/** A duration string (`100ms`, `1.5s`, `1h2m`); the output stays a string, read it with parseDurationMs. */
export const durationSchema = z.string().superRefine((text, ctx) => {
  try {
    parseDurationMs(text)
  } catch (error) {
    addError(ctx, (error as Error).message)
  }
})

/** A duration as Istio validates its timeouts: at least 1ms, in whole milliseconds. */
export const timeoutDurationSchema = z.string().superRefine((text, ctx) => {
  let ms: number
  try {
    ms = parseDurationMs(text)
  } catch (error) {
    addError(ctx, (error as Error).message)
    return
  }
  if (ms < 1) addError(ctx, `duration '${text}' must be at least 1ms`)
  else if (!Number.isInteger(ms))
    addError(ctx, `duration '${text}': only durations to ms precision are supported`)
})

export const ipAddressSchema = z.string().superRefine((address, ctx) => {
  if (isIP(address) === 0) addError(ctx, `'${address}' is not a valid IP address`)
})

/** An IP address or a CIDR block (`10.0.0.0/8`, `2001:db8::/32`). */
export const ipOrCidrSchema = z.string().superRefine((text, ctx) => {
  const [address, prefix, ...extra] = text.split('/')
  const family = isIP(address)
  const maxPrefix = family === 6 ? 128 : 32
  const prefixValid = prefix === undefined || (/^[0-9]+$/.test(prefix) && Number(prefix) <= maxPrefix)
  if (family === 0 || !prefixValid || extra.length > 0)
    addError(ctx, `'${text}' is not a valid IP address or CIDR block`)
})

export const weightSchema = z.number().superRefine((weight, ctx) => {
  if (!Number.isInteger(weight) || weight < 0)
    addError(ctx, `weight must be a non-negative integer (got ${weight})`)
})

/** A map of label (or other) names to string values. */
export const stringMapSchema = z.record(z.string(), z.string())
