// Takes the README's dashboard screenshot: a proxy with a few services under traffic (some slow, some failing), shot in headless Chromium.
// Run: npx node scripts/dashboard-screenshot.ts [out.png] (default docs/images/dashboard.png; needs /usr/bin/chromium).

import { mkdir } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { dirname, join } from 'node:path'
import { chromium } from 'playwright-core'
import { send } from '../test/harness/client.ts'
import { destinationRule, serviceEntry, sidecar, yamlStream } from '../test/harness/istio.ts'
import { freePorts } from '../test/harness/ports.ts'
import { repoRoot, startProxy } from '../test/harness/proxy-process.ts'
import { startUpstream } from '../test/harness/upstream.ts'

const out = process.argv[2] ?? join(repoRoot, 'docs', 'images', 'dashboard.png')
/** How long traffic runs before the shot, so the charts hold a few minutes' worth… or at least a good part of one. */
const fillSeconds = Number(process.env.FILL_SECONDS ?? 75)

/** An upstream that answers after a delay drawn around `meanMs`, and fails with 500 (not retried by Istio's default policy) a share `failRate` of the time. */
function service(meanMs: number, failRate: () => number) {
  return (req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    const delay = meanMs * (0.5 + Math.random()) + (Math.random() < 0.02 ? meanMs * 4 : 0)
    setTimeout(() => {
      res.writeHead(Math.random() < failRate() ? 500 : 200, { 'content-type': 'text/plain' })
      res.end('ok\n')
    }, delay)
  }
}

const started = Date.now()
const elapsed = () => (Date.now() - started) / 1000
const productpage = await startUpstream(
  'productpage',
  service(4, () => 0),
)
const reviewsV1 = await startUpstream(
  'reviews-v1',
  service(18, () => 0.005),
)
// reviews-v2 has a bad spell in the middle of the run: its errors rise, then outlier detection ejects it.
const reviewsV2 = await startUpstream(
  'reviews-v2',
  service(35, () => (elapsed() > fillSeconds * 0.45 ? 0.6 : 0.01)),
)
const ratings = await startUpstream(
  'ratings',
  service(6, () => 0.03),
)
const details = await startUpstream(
  'details',
  service(2, () => 0),
)
const [inbound, egress] = await freePorts(2)

const http = (port: number) => [{ number: 9080, name: 'http', protocol: 'HTTP', targetPort: port }]
const proxy = await startProxy({
  extraBootstrap: 'live: {enabled: true}\n',
  labels: { app: 'productpage', version: 'v1' },
  resources: {
    'sidecar.yaml': sidecar({
      ingress: [
        { port: inbound, protocol: 'HTTP', name: 'http', defaultEndpoint: `127.0.0.1:${productpage.port}` },
      ],
      egress: [{ port: egress, protocol: 'HTTP', name: 'http' }],
    }),
    'services.yaml': yamlStream(
      serviceEntry({
        name: 'reviews',
        ports: [{ number: 9080, name: 'http', protocol: 'HTTP' }],
        endpoints: [
          { address: '127.0.0.1', ports: { http: reviewsV1.port }, labels: { version: 'v1' } },
          { address: '127.0.0.1', ports: { http: reviewsV2.port }, labels: { version: 'v2' } },
        ],
      }),
      serviceEntry({ name: 'ratings', ports: http(ratings.port) }),
      serviceEntry({ name: 'details', ports: http(details.port) }),
      destinationRule({
        name: 'reviews',
        host: 'reviews',
        trafficPolicy: {
          outlierDetection: {
            consecutive5xxErrors: 5,
            interval: '2s',
            baseEjectionTime: '5m',
            maxEjectionPercent: 50,
          },
        },
      }),
    ),
  },
})

let running = true
async function loop(port: number, host: string, path: string, perSecond: number): Promise<void> {
  while (running) {
    await send(port, host, path).catch(() => undefined)
    await new Promise((r) => setTimeout(r, 1000 / perSecond))
  }
}
const loops = [
  loop(inbound, 'productpage', '/productpage', 20),
  loop(inbound, 'productpage', '/api/v1/products', 8),
  loop(egress, 'reviews', '/reviews/1', 12),
  loop(egress, 'reviews', '/reviews/2', 12),
  loop(egress, 'ratings', '/ratings/1', 15),
  loop(egress, 'details', '/details/1', 10),
]

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] })
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 })
  page.on('console', (m) => {
    if (m.type() === 'error') console.error(`page console: ${m.text()}`)
  })
  await page.goto(`http://127.0.0.1:${proxy.adminPort}/`)
  // The tap runs through the last seconds of the run (when this proxy serves /tap).
  const tapAfter = Math.max(0, fillSeconds - 8) * 1000
  await new Promise((r) => setTimeout(r, tapAfter))
  if (await page.locator('#tap-toggle').isEnabled()) await page.locator('#tap-toggle').click()
  await new Promise((r) => setTimeout(r, fillSeconds * 1000 - tapAfter))
  await mkdir(dirname(out), { recursive: true })
  await page.evaluate('window.scrollTo(0, 0)')
  await page.screenshot({ path: out, fullPage: true })
  console.log(`wrote ${out}`)
} finally {
  running = false
  await Promise.all(loops)
  await browser.close()
  await proxy.stop()
  for (const upstream of [productpage, reviewsV1, reviewsV2, ratings, details]) await upstream.close()
}
