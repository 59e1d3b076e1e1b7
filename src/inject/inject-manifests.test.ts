// outrigger inject on sample manifests, checked field by field against Istio's injection and validated against the Kubernetes schemas.

import { describe, expect, it } from 'vitest'
import { parseAllDocuments } from 'yaml'
import { validateManifest } from '../../test/harness/kubernetes-schemas.ts'
import { injectManifests } from './inject-manifests.ts'

const image = 'registry.example/outrigger:test'

interface Container {
  name: string
  image?: string
  args?: string[]
  restartPolicy?: string
  env?: { name: string; value?: string; valueFrom?: { fieldRef: { fieldPath: string } } }[]
  securityContext?: Record<string, unknown>
  readinessProbe?: Record<string, unknown>
  livenessProbe?: Record<string, unknown>
  startupProbe?: Record<string, unknown>
  volumeMounts?: { name: string; mountPath: string }[]
}
interface PodSpec {
  containers: Container[]
  initContainers?: Container[]
  volumes?: { name: string; [key: string]: unknown }[]
}
interface PodTemplate {
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string> }
  spec: PodSpec
}

/** Injects `text`; expects no error, validates every output document, and returns them. */
function inject(text: string): { docs: Record<string, unknown>[]; output: string; warnings: string[] } {
  const result = injectManifests(text, 'app.yaml', { image })
  expect(result.messages.filter((m) => m.severity === 'error')).toEqual([])
  const output = result.output ?? ''
  const docs = parseAllDocuments(output).map((doc) => doc.toJS() as Record<string, unknown>)
  for (const doc of docs) validateManifest(doc)
  return { docs, output, warnings: result.messages.map((m) => `${m.line}: ${m.message}`) }
}

const templateOf = (doc: Record<string, unknown>): PodTemplate =>
  (doc.spec as { template: PodTemplate }).template

function deployment(podAnnotations = '', extraSpec = '', containerExtra = ''): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: reviews
  namespace: shop
spec:
  selector:
    matchLabels: {app: reviews}
  template:
    metadata:
      labels: {app: reviews, version: v2}
${podAnnotations === '' ? '' : `      annotations:\n${podAnnotations}`}    spec:
      serviceAccountName: bookinfo-reviews
${extraSpec}      containers:
      - name: app
        image: reviews:v2
        ports:
        - {name: http, containerPort: 9080}
        - {name: grpc, containerPort: 9090, protocol: TCP}
${containerExtra}`
}

const envOf = (container: Container, name: string) => container.env?.find((e) => e.name === name)

describe('outrigger inject: the containers it adds', () => {
  const { docs } = inject(deployment())
  const pod = templateOf(docs[0])
  const [init, proxy] = pod.spec.initContainers ?? []

  it('puts the capture init container first and the proxy second, as Istio orders native sidecars', () => {
    expect(pod.spec.initContainers?.map((c) => c.name)).toEqual(['istio-init', 'istio-proxy'])
    expect(pod.spec.containers.map((c) => c.name)).toEqual(['app'])
  })

  it('istio-init runs capture install as root with NET_ADMIN and NET_RAW, with Istio default flags', () => {
    expect(init.image).toBe(image)
    expect(init.args).toEqual([
      'capture',
      'install',
      '--proxy-uid',
      '1337',
      '--mode',
      'redirect',
      '--outbound-ip-ranges',
      '*',
      '--inbound-ports',
      '*',
      '--exclude-inbound-ports',
      '15090,15021,15020',
    ])
    expect(init.restartPolicy).toBeUndefined()
    expect(init.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
      readOnlyRootFilesystem: false,
      runAsGroup: 0,
      runAsNonRoot: false,
      runAsUser: 0,
    })
  })

  it('istio-proxy is a native sidecar running the bootstrap from its ConfigMap as uid 1337', () => {
    expect(proxy.restartPolicy).toBe('Always')
    expect(proxy.image).toBe(image)
    expect(proxy.args).toEqual(['run', '--config', '/etc/outrigger/bootstrap/bootstrap.yaml'])
    expect(proxy.securityContext).toMatchObject({ runAsUser: 1337, runAsGroup: 1337, runAsNonRoot: true })
    expect(proxy.securityContext?.capabilities).toEqual({ drop: ['ALL'] })
    const ready = { httpGet: { path: '/healthz/ready', port: 15021 } }
    expect(proxy.readinessProbe).toMatchObject({ ...ready, periodSeconds: 15, failureThreshold: 4 })
    expect(proxy.startupProbe).toMatchObject({ ...ready, periodSeconds: 1, failureThreshold: 600 })
    expect((proxy as { resources?: unknown }).resources).toEqual({
      requests: { cpu: '100m', memory: '128Mi' },
      limits: { cpu: '2000m', memory: '1024Mi' },
    })
  })

  it('gives the proxy the pod identity through the downward API, as Istio names it', () => {
    expect(envOf(proxy, 'POD_NAME')?.valueFrom?.fieldRef.fieldPath).toBe('metadata.name')
    expect(envOf(proxy, 'POD_NAMESPACE')?.valueFrom?.fieldRef.fieldPath).toBe('metadata.namespace')
    expect(envOf(proxy, 'INSTANCE_IP')?.valueFrom?.fieldRef.fieldPath).toBe('status.podIP')
    expect(envOf(proxy, 'SERVICE_ACCOUNT')?.valueFrom?.fieldRef.fieldPath).toBe('spec.serviceAccountName')
    expect(envOf(proxy, 'ISTIO_META_APP_CONTAINERS')?.value).toBe('app')
    expect(envOf(proxy, 'ISTIO_META_WORKLOAD_NAME')?.value).toBe('reviews')
    expect(envOf(proxy, 'ISTIO_META_OWNER')?.value).toBe(
      'kubernetes://apis/apps/v1/namespaces/shop/deployments/reviews',
    )
    expect(JSON.parse(envOf(proxy, 'ISTIO_META_POD_PORTS')?.value ?? '')).toEqual([
      { name: 'http', containerPort: 9080 },
      { name: 'grpc', containerPort: 9090, protocol: 'TCP' },
    ])
    expect(envOf(proxy, 'ISTIO_KUBE_APP_PROBERS')).toBeUndefined()
  })

  it('mounts the bootstrap and resources ConfigMaps, the istio.<service account> Secret and the pod info', () => {
    expect(pod.spec.volumes).toEqual([
      { name: 'outrigger-bootstrap', configMap: { name: 'outrigger-bootstrap-reviews' } },
      { name: 'outrigger-istio', configMap: { name: 'outrigger-istio' } },
      { name: 'istio-certs', secret: { secretName: 'istio.bookinfo-reviews', optional: true } },
      expect.objectContaining({ name: 'istio-podinfo' }),
    ])
    expect(proxy.volumeMounts?.map((m) => [m.name, m.mountPath])).toEqual([
      ['outrigger-bootstrap', '/etc/outrigger/bootstrap'],
      ['outrigger-istio', '/etc/outrigger/istio'],
      ['istio-certs', '/etc/certs'],
      ['istio-podinfo', '/etc/istio/pod'],
    ])
  })

  it("marks the pod with Istio's labels and its sidecar.istio.io/status annotation", () => {
    expect(pod.metadata.labels).toEqual({
      app: 'reviews',
      version: 'v2',
      'security.istio.io/tlsMode': 'istio',
      'service.istio.io/canonical-name': 'reviews',
      'service.istio.io/canonical-revision': 'v2',
    })
    expect(JSON.parse(pod.metadata.annotations?.['sidecar.istio.io/status'] ?? '')).toEqual({
      initContainers: ['istio-init', 'istio-proxy'],
      containers: null,
      volumes: ['outrigger-bootstrap', 'outrigger-istio', 'istio-certs', 'istio-podinfo'],
      imagePullSecrets: null,
      revision: 'default',
    })
    expect(pod.metadata.annotations?.['kubectl.kubernetes.io/default-container']).toBe('app')
  })
})

describe('outrigger inject: traffic annotations become capture flags', () => {
  it('passes every traffic.sidecar.istio.io annotation, with 15020 added to the excluded inbound ports', () => {
    const annotations = `        traffic.sidecar.istio.io/includeInboundPorts: "9080"
        traffic.sidecar.istio.io/excludeInboundPorts: "9090, 9091"
        traffic.sidecar.istio.io/includeOutboundIPRanges: 10.0.0.0/8
        traffic.sidecar.istio.io/excludeOutboundIPRanges: 10.96.0.1/32
        traffic.sidecar.istio.io/includeOutboundPorts: "443"
        traffic.sidecar.istio.io/excludeOutboundPorts: "5432,6379"
`
    const init = templateOf(inject(deployment(annotations)).docs[0]).spec.initContainers?.[0]
    expect(init?.args).toEqual([
      'capture',
      'install',
      '--proxy-uid',
      '1337',
      '--mode',
      'redirect',
      '--outbound-ip-ranges',
      '10.0.0.0/8',
      '--exclude-outbound-ip-ranges',
      '10.96.0.1/32',
      '--inbound-ports',
      '9080',
      '--exclude-inbound-ports',
      '15090,15021,9090,9091,15020',
      '--outbound-ports',
      '443',
      '--exclude-outbound-ports',
      '5432,6379',
    ])
  })

  it('does not repeat 15020 when the annotation already excludes it', () => {
    const annotations = `        traffic.sidecar.istio.io/excludeInboundPorts: "15020,8081"\n`
    const init = templateOf(inject(deployment(annotations)).docs[0]).spec.initContainers?.[0]
    expect(init?.args?.at(-1)).toBe('15090,15021,15020,8081')
  })

  it('TPROXY runs the proxy as root with NET_ADMIN and gid 1337; NONE adds no capture container', () => {
    const tproxy = templateOf(
      inject(deployment(`        sidecar.istio.io/interceptionMode: TPROXY\n`)).docs[0],
    )
    expect(tproxy.spec.initContainers?.[0].args?.slice(4, 6)).toEqual(['--mode', 'tproxy'])
    expect(tproxy.spec.initContainers?.[1].securityContext).toMatchObject({
      runAsUser: 0,
      runAsGroup: 1337,
      capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] },
    })
    const none = templateOf(inject(deployment(`        sidecar.istio.io/interceptionMode: NONE\n`)).docs[0])
    expect(none.spec.initContainers?.map((c) => c.name)).toEqual(['istio-proxy'])
  })
})

describe('outrigger inject: app probes go through the health port', () => {
  const probes = `        readinessProbe:
          httpGet: {path: /ready?a=1&b=2, port: http, scheme: HTTPS, httpHeaders: [{name: X-Probe, value: k8s}]}
          periodSeconds: 7
        livenessProbe:
          tcpSocket: {port: 9080}
          timeoutSeconds: 2
        startupProbe:
          grpc: {port: 9090}
          failureThreshold: 30
`
  const { docs } = inject(deployment('', '', probes))
  const pod = templateOf(docs[0])
  const app = pod.spec.containers[0]

  it('rewrites httpGet, tcpSocket and grpc probes to /app-health/<container>/<kind> on 15021, keeping their timing', () => {
    expect(app.readinessProbe).toEqual({
      httpGet: {
        path: '/app-health/app/readyz',
        port: 15021,
        scheme: 'HTTP',
        httpHeaders: [{ name: 'X-Probe', value: 'k8s' }],
      },
      periodSeconds: 7,
    })
    expect(app.livenessProbe).toEqual({
      httpGet: { path: '/app-health/app/livez', port: 15021 },
      timeoutSeconds: 2,
    })
    expect(app.startupProbe).toEqual({
      httpGet: { path: '/app-health/app/startupz', port: 15021 },
      failureThreshold: 30,
    })
  })

  it("keeps the originals in ISTIO_KUBE_APP_PROBERS, byte for byte Go's JSON of Istio's KubeAppProbers", () => {
    const proxy = pod.spec.initContainers?.[1] as Container
    expect(envOf(proxy, 'ISTIO_KUBE_APP_PROBERS')?.value).toBe(
      '{"/app-health/app/livez":{"tcpSocket":{"port":9080},"timeoutSeconds":2},' +
        '"/app-health/app/readyz":{"httpGet":{"path":"/ready?a=1\\u0026b=2","port":9080,"scheme":"HTTPS",' +
        '"httpHeaders":[{"name":"X-Probe","value":"k8s"}]}},' +
        '"/app-health/app/startupz":{"grpc":{"port":9090,"service":null}}}',
    )
  })

  it('leaves a probe on an unknown named port out of the JSON (as Istio) but still rewrites it', () => {
    const { docs: unknown } = inject(
      deployment('', '', `        readinessProbe:\n          httpGet: {path: /r, port: nosuch}\n`),
    )
    const spec = templateOf(unknown[0]).spec
    expect(envOf(spec.initContainers?.[1] as Container, 'ISTIO_KUBE_APP_PROBERS')).toBeUndefined()
    expect(spec.containers[0].readinessProbe).toEqual({
      httpGet: { path: '/app-health/app/readyz', port: 15021 },
    })
  })

  it('sidecar.istio.io/rewriteAppHTTPProbers: "false" keeps the probes and sets no env', () => {
    const { docs: kept } = inject(
      deployment(`        sidecar.istio.io/rewriteAppHTTPProbers: "false"\n`, '', probes),
    )
    const spec = templateOf(kept[0]).spec
    expect(spec.containers[0].livenessProbe).toEqual({ tcpSocket: { port: 9080 }, timeoutSeconds: 2 })
    expect(envOf(spec.initContainers?.[1] as Container, 'ISTIO_KUBE_APP_PROBERS')).toBeUndefined()
  })
})

describe('outrigger inject: what it leaves alone', () => {
  it('is idempotent: an injected manifest comes out as it went in', () => {
    const once = inject(deployment('', '', '        readinessProbe: {tcpSocket: {port: 9080}}\n')).output
    const twice = injectManifests(once, 'app.yaml', { image })
    expect(twice.output).toBe(once)
    expect(twice.messages.map((m) => m.message)).toEqual([
      'Deployment reviews (spec.template): not injected: it is already injected',
    ])
  })

  it('keeps other kinds byte for byte, comments and flow style included', () => {
    const service = `# the front door
apiVersion: v1
kind: Service
metadata: {name: reviews}   # same name as the Deployment
spec:
  ports: [{port: 9080}]
`
    const configMap = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: "1"\n`
    const text = `${service}---\n${deployment()}---\n${configMap}`
    const { output, docs } = inject(text)
    expect(output.startsWith(`${service}---\n`)).toBe(true)
    expect(output.endsWith(`---\n${configMap}`)).toBe(true)
    expect(docs.map((doc) => doc.kind)).toEqual(['Service', 'Deployment', 'ConfigMap'])
  })

  it('skips sidecar.istio.io/inject: "false" (label or annotation; the label wins), host network and kube-system', () => {
    const cases = [
      deployment(`        sidecar.istio.io/inject: "false"\n`),
      deployment('').replace('version: v2}', 'version: v2, sidecar.istio.io/inject: "false"}'),
      deployment('', '      hostNetwork: true\n'),
      deployment('').replace('namespace: shop', 'namespace: kube-system'),
    ]
    const reasons = cases.map((text) => {
      const result = injectManifests(text, 'app.yaml', { image })
      expect(result.output).toBe(text)
      return result.messages.map((m) => `${m.severity} ${m.line}: ${m.message}`)
    })
    expect(reasons).toEqual([
      ['warning 9: Deployment reviews (spec.template): not injected: it has sidecar injection disabled'],
      ['warning 9: Deployment reviews (spec.template): not injected: it has sidecar injection disabled'],
      ['warning 9: Deployment reviews (spec.template): not injected: it has host networking enabled'],
      [
        'warning 9: Deployment reviews (spec.template): not injected: it is in the system namespace kube-system',
      ],
    ])
    const labelWins = deployment(`        sidecar.istio.io/inject: "false"\n`).replace(
      'version: v2}',
      'version: v2, sidecar.istio.io/inject: "true"}',
    )
    expect(inject(labelWins).output).toContain('istio-proxy')
  })
})

describe('outrigger inject: every kind that holds a pod', () => {
  const pod = (name: string) =>
    `metadata:\n  labels: {app: ${name}}\nspec:\n  containers:\n  - {name: ${name}, image: x}\n`
  const indent = (text: string, spaces: number) => text.replace(/^(?=.)/gm, ' '.repeat(spaces))

  it('injects Pod, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob and List items in one stream', () => {
    const selector = 'selector: {matchLabels: {app: a}}'
    const text = [
      `apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: p, image: x}\n`,
      `apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\nspec:\n  serviceName: s\n  ${selector}\n  template:\n${indent(pod('a'), 4)}`,
      `apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: d}\nspec:\n  ${selector}\n  template:\n${indent(pod('a'), 4)}`,
      `apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: r}\nspec:\n  ${selector}\n  template:\n${indent(pod('a'), 4)}`,
      `apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n${indent(pod('j'), 4)}`,
      `apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  schedule: "* * * * *"\n  jobTemplate:\n    spec:\n      template:\n${indent(pod('c'), 8)}`,
      `apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: l}\n  spec:\n    containers:\n    - {name: l, image: x}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: untouched}\n`,
    ].join('---\n')
    const { docs } = inject(text)
    const specs = [
      docs[0].spec,
      templateOf(docs[1]).spec,
      templateOf(docs[2]).spec,
      templateOf(docs[3]).spec,
      templateOf(docs[4]).spec,
      templateOf((docs[5].spec as { jobTemplate: Record<string, unknown> }).jobTemplate).spec,
      ((docs[6].items as Record<string, unknown>[])[0] as { spec: PodSpec }).spec,
    ] as PodSpec[]
    for (const spec of specs)
      expect(spec.initContainers?.map((c) => c.name)).toEqual(['istio-init', 'istio-proxy'])
    expect((docs[6].items as Record<string, unknown>[])[1]).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'untouched' },
    })
    const cronProxy = (specs[5].initContainers as Container[])[1]
    expect(envOf(cronProxy, 'ISTIO_META_OWNER')?.value).toBe(
      'kubernetes://apis/batch/v1/namespaces/default/cronjobs/c',
    )
  })
})

describe('outrigger inject: malformed input', () => {
  it('rejects malformed YAML with its file:line and prints nothing', () => {
    const text = `${deployment()}---\napiVersion: v1\nkind: Pod\nmetadata: {name: p\nspec: {}\n`
    const result = injectManifests(text, 'app.yaml', { image })
    expect(result.output).toBeUndefined()
    const errors = result.messages.filter((m) => m.severity === 'error')
    expect(errors.length).toBeGreaterThan(0)
    // The second document starts on line 21; the yaml package reports the unclosed flow mapping on the line after it.
    expect(errors[0]).toMatchObject({ file: 'app.yaml', line: 24 })
    expect(errors[0].message).toMatch(/^invalid YAML/)
  })

  it('rejects a pod whose containers are not a list, at that line of that document', () => {
    const text = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: app\n`
    const result = injectManifests(text, 'pods.yaml', { image })
    expect(result.output).toBeUndefined()
    expect(result.messages).toEqual([
      { severity: 'error', file: 'pods.yaml', line: 9, message: 'spec.containers: expected a list' },
    ])
  })

  it('refuses an app container named istio-proxy', () => {
    const text = `apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: istio-proxy, image: x}\n`
    const result = injectManifests(text, 'p.yaml', { image })
    expect(result.messages).toEqual([
      {
        severity: 'error',
        file: 'p.yaml',
        line: 6,
        message: "spec.containers[0].name: 'istio-proxy' is the name of a container inject adds",
      },
    ])
  })
})
