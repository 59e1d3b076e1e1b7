// A Telemetry resource that turns every standard metric off for both directions: the benches' "metrics off".

export const metricsOffResource = `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: metrics-off, namespace: default}
spec:
  metrics:
    - providers: [{name: prometheus}]
      overrides: [{match: {metric: ALL_METRICS, mode: CLIENT_AND_SERVER}, disabled: true}]
`
