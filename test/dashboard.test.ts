// Scenario: the admin dashboard in headless Chromium (Debian's) against a running proxy under traffic, a rejected reload and a tap.

import { existsSync } from 'node:fs'
import { unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { send } from './harness/client.ts'
import { serviceEntry, sidecar, yamlStream } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

const chromiumPath = '/usr/bin/chromium'
const noChromium = existsSync(chromiumPath)
  ? undefined
  : `${chromiumPath} is not installed (scripts/install-test-tools.sh)`

let proxy: ProxyProcess
let app: Upstream
let egress: number
let browser: Browser | undefined
let page: Page
/** Console errors and uncaught exceptions of the page, from its first load on. */
const pageErrors: string[] = []
/** Background traffic through the egress listener while the test runs. */
let traffic: Promise<void> | undefined
let stopTraffic = false

const appResources = (): string =>
  yamlStream(
    sidecar({ egress: [{ port: egress, protocol: 'HTTP', name: 'http' }] }),
    serviceEntry({
      name: 'app',
      ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: app.port }],
      spec: { workloadSelector: { labels: { app: 'app' } } },
    }),
  )

async function driveTraffic(): Promise<void> {
  while (!stopTraffic) {
    await send(egress, 'app', '/traffic').catch(() => undefined)
    await new Promise((r) => setTimeout(r, 20))
  }
}

beforeAll(async () => {
  if (noChromium !== undefined) return
  app = await startUpstream('app')
  ;[egress] = await freePorts(1)
  proxy = await startProxy({
    extraBootstrap: 'live: {enabled: true}\n',
    resources: { 'app.yaml': appResources() },
  })
  browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'], timeout: 20_000 })
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  page.setDefaultTimeout(10_000)
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(`console: ${message.text()}`)
  })
  page.on('pageerror', (error) => pageErrors.push(`page: ${error.message}`))
  await page.goto(`http://127.0.0.1:${proxy.adminPort}/`)
}, 40_000)

afterAll(async () => {
  stopTraffic = true
  await traffic
  await browser?.close()
  await proxy?.stop()
  await app?.close()
})

describe.skipIf(noChromium !== undefined)('the admin dashboard', () => {
  it('GET / serves the page, its own files and uPlot with no external URL; the text index moved to /help', async () => {
    const html = await (await proxy.admin('/')).text()
    expect(html).toContain('<script src="/dashboard/dashboard.js"')
    expect(html).not.toMatch(/(?:src|href)="(?:https?:)?\/\//)
    for (const path of [
      '/dashboard/dashboard.js',
      '/dashboard/dashboard.css',
      '/dashboard/uplot.js',
      '/dashboard/uplot.css',
    ]) {
      const res = await proxy.admin(path)
      expect(res.status, path).toBe(200)
      expect((await res.text()).length, path).toBeGreaterThan(100)
    }
    expect(await (await proxy.admin('/dashboard/uplot.js')).text()).toContain('uPlot')
    const help = await (await proxy.admin('/help')).text()
    expect(help).toContain('GET /config_dump')
    expect(help).toContain('GET /live/config')
  })

  it('loads without console errors and shows the listeners, clusters and config in force', async () => {
    await page.locator('#listeners tbody tr', { hasText: `127.0.0.1:${egress}` }).waitFor()
    await expect
      .poll(() => page.locator('#listeners tbody').innerText())
      .toMatch(/outbound\s+HTTP\s+http\s+bound/)
    await page
      .locator('#clusters tbody tr.cluster', { hasText: 'outbound|80||app.default.svc.cluster.local' })
      .waitFor()
    await page.locator('#clusters tbody tr.endpoint', { hasText: `127.0.0.1:${app.port}` }).waitFor()
    expect(
      await page.locator('#clusters tbody tr.endpoint', { hasText: `127.0.0.1:${app.port}` }).innerText(),
    ).toContain('healthy')
    expect(await page.locator('#config-summary').innerText()).toMatch(/model v1 · 2 resources/)
    // The field we do not implement is a warning with its file and line.
    expect(await page.locator('#config-warnings').innerText()).toMatch(/app\.yaml:\d+: .*workloadSelector/)
    expect(await page.locator('#rejection').isHidden()).toBe(true)
    expect(await page.locator('#status').innerText()).toBe('ready')
    expect(pageErrors).toEqual([])
  })

  it('under traffic the charts move: the requests they hold grow between two reads', async () => {
    traffic = driveTraffic()
    const rate = page.locator('#chart-rate')
    await expect
      .poll(async () => Number(await rate.getAttribute('data-requests')), { timeout: 10_000 })
      .toBeGreaterThan(0)
    const first = Number(await rate.getAttribute('data-requests'))
    await expect
      .poll(async () => Number(await rate.getAttribute('data-requests')), { timeout: 10_000 })
      .toBeGreaterThan(first + 5)
    expect(await rate.getAttribute('data-series')).toMatch(/app/)
    // uPlot drew into the chart: a canvas per chart.
    expect(await page.locator('.chart canvas').count()).toBeGreaterThanOrEqual(3)
    // The numbers are the windowed ones (/live/history and /live/stat), latency included.
    expect(await page.locator('#traffic-note').innerText()).toBe('')
    await expect
      .poll(() => page.locator('#traffic-table tbody').innerText())
      .toMatch(/app\.default\.svc\.cluster\.local\s+outbound\s+[\d.]+\s+100\.0%\s+[\d.]+\s+[\d.]+\s+[\d.]+/)
    // By cluster, the same traffic under the cluster's name.
    await page.locator('#group-by').selectOption('cluster')
    await expect
      .poll(() => rate.getAttribute('data-series'))
      .toContain('outbound|80||app.default.svc.cluster.local')
    await expect
      .poll(() => page.locator('#traffic-table tbody').innerText())
      .toContain('outbound|80||app.default.svc.cluster.local')
    await page.locator('#group-by').selectOption('service')
    expect(pageErrors).toEqual([])
  }, 25_000)

  it('a rejected reload shows with its file:line, and stays shown (with both states) after a later good reload', async () => {
    await proxy.writeResource(
      'bad.yaml',
      'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: bad}\nspec:\n  hosts: 7\n',
    )
    await page.locator('#rejection').waitFor({ state: 'visible', timeout: 10_000 })
    await expect.poll(() => page.locator('#rejection-messages').innerText()).toMatch(/bad\.yaml:\d+: /)
    expect(await page.locator('#config-verdict').innerText()).toMatch(/latest reload was rejected.*model v1/)
    const rejectedAt = await page.locator('#rejection').getAttribute('data-at')

    await unlink(join(proxy.dir, 'istio', 'bad.yaml'))
    await expect
      .poll(() => page.locator('#config-verdict').innerText(), { timeout: 10_000 })
      .toMatch(/In force: model v2.*after the last rejected reload/)
    expect(await page.locator('#rejection').isVisible()).toBe(true)
    expect(await page.locator('#rejection').getAttribute('data-at')).toBe(rejectedAt)
    expect(await page.locator('#rejection-messages').innerText()).toMatch(/bad\.yaml:\d+: /)
    expect(pageErrors).toEqual([])
  }, 25_000)

  it('the tap panel shows a request sent after it starts', async () => {
    await page.locator('#tap-toggle').click()
    await expect.poll(() => page.locator('#tap-toggle').innerText()).toBe('stop')
    const path = `/tapped-${process.pid}`
    await page.locator('#tap-filter').fill('tapped')
    await expect
      .poll(
        async () => {
          await send(egress, 'app', path)
          return page.locator('#tap-rows').innerText()
        },
        { timeout: 10_000 },
      )
      .toContain(path)
    // The filter hides the background traffic.
    expect(await page.locator('#tap-rows').innerText()).not.toContain('/traffic')
    await page.locator('#tap-toggle').click()
    await expect.poll(() => page.locator('#tap-toggle').innerText()).toBe('start')
    expect(pageErrors).toEqual([])
  }, 20_000)
})

describe.skipIf(noChromium !== undefined)('the admin dashboard with the live view off', () => {
  it('draws each cluster’s request rate from Envoy’s counters, and asks for no page that answers 404', async () => {
    const [port] = await freePorts(1)
    const resources = yamlStream(
      sidecar({ egress: [{ port, protocol: 'HTTP', name: 'http' }] }),
      serviceEntry({
        name: 'app',
        ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: app.port }],
      }),
    )
    const quiet = await startProxy({
      resources: { 'app.yaml': resources },
      extraBootstrap: 'live: {enabled: false}\n',
    })
    const errors: string[] = []
    const livePage = await browser!.newPage()
    let sending = true
    const sent = (async () => {
      while (sending) {
        await send(port, 'app', '/counted').catch(() => undefined)
        await new Promise((r) => setTimeout(r, 20))
      }
    })()
    try {
      expect((await quiet.admin('/live/history?by=cluster&seconds=5')).status).toBe(404)
      livePage.on('console', (message) => {
        if (message.type() === 'error') errors.push(`console: ${message.text()}`)
      })
      livePage.on('pageerror', (error) => errors.push(`page: ${error.message}`))
      await livePage.goto(`http://127.0.0.1:${quiet.adminPort}/`)
      await expect.poll(() => livePage.locator('#traffic-note').innerText()).toMatch(/live view is off/)
      const rate = livePage.locator('#chart-rate')
      await expect
        .poll(async () => Number(await rate.getAttribute('data-requests')), { timeout: 10_000 })
        .toBeGreaterThan(10)
      expect(await rate.getAttribute('data-series')).toContain('outbound|80||app.default.svc.cluster.local')
      expect(errors).toEqual([])
    } finally {
      sending = false
      await sent
      await livePage.close()
      await quiet.stop()
    }
  }, 30_000)
})
