// DestinationRule spec (istio/api networking/v1alpha3/destination_rule.proto): a service's subsets and policies.

import { z } from 'zod'
import { addError } from './add-error.ts'
import { stringMapSchema } from './fields.ts'
import { isDnsLabel, wildcardDomainProblem } from './host-name.ts'
import { unsupported } from './unsupported.ts'

/** Every TrafficPolicy field is accepted and reported as not supported yet. */
const trafficPolicySchema = z.strictObject({
  loadBalancer: unsupported(),
  connectionPool: unsupported(),
  outlierDetection: unsupported(),
  tls: unsupported(),
  portLevelSettings: unsupported(),
  tunnel: unsupported(),
  proxyProtocol: unsupported(),
  retryBudget: unsupported(),
})

const subsetSchema = z.strictObject({
  name: z.string().superRefine((name, ctx) => {
    if (name === '') addError(ctx, 'subset name cannot be empty')
    else if (!isDnsLabel(name)) addError(ctx, `subset name is invalid: '${name}'`)
  }),
  labels: stringMapSchema.default({}),
  trafficPolicy: trafficPolicySchema.optional(),
})

export const destinationRuleSpecSchema = z
  .strictObject({
    host: z.string().superRefine((host, ctx) => {
      const problem = wildcardDomainProblem(host)
      if (problem !== undefined) addError(ctx, problem)
    }),
    trafficPolicy: trafficPolicySchema.optional(),
    subsets: z.array(subsetSchema).default([]),
    exportTo: z.array(z.string()).default([]),
    workloadSelector: unsupported(),
  })
  .superRefine((rule, ctx) => {
    const seen = new Set<string>()
    rule.subsets.forEach((subset, index) => {
      if (seen.has(subset.name))
        addError(ctx, `duplicate subset names: ${subset.name}`, ['subsets', index, 'name'])
      seen.add(subset.name)
    })
  })

export type DestinationRuleSpec = z.infer<typeof destinationRuleSpecSchema>
export type Subset = DestinationRuleSpec['subsets'][number]
