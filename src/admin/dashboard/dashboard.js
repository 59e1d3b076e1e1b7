// The admin dashboard's script (plain ES2020, no framework): polls the admin API and draws uPlot charts (docs/dashboard.md).
;(() => {
  /** Seconds of traffic the charts show. */
  const HISTORY_SECONDS = 300
  /** Rows the charts draw a series for: the busiest over the last minute. */
  const MAX_SERIES = 8
  /** Tap rows shown, and tapped requests kept for the filter to search. */
  const TAP_ROWS = 200
  const TAP_KEPT = 1000
  const palette = ['#3366cc', '#dc7633', '#2e9e6a', '#c0392b', '#8e44ad', '#16a0b5', '#b59a16', '#7f8c8d']

  const byId = (id) => document.getElementById(id)

  /** An element with text children only (nothing from the proxy is ever parsed as HTML). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag)
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue
      if (name === 'style') node.style.cssText = value
      else node.setAttribute(name, value === true ? '' : String(value))
    }
    for (const child of children) {
      if (child === undefined || child === null) continue
      node.append(child instanceof Node ? child : document.createTextNode(String(child)))
    }
    return node
  }

  async function getJson(path) {
    const res = await fetch(path, { cache: 'no-store' })
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`)
    return res.json()
  }

  const fixed = (value, digits) => (value === null || value === undefined ? '–' : value.toFixed(digits))
  const percent = (rate) => (rate === null || rate === undefined ? '–' : `${(rate * 100).toFixed(1)}%`)
  const rateClass = (rate) =>
    rate === null || rate === undefined ? '' : rate >= 0.99 ? 'good' : rate >= 0.9 ? 'warn' : 'bad'
  const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '')

  /** Runs `poll` every `ms`, never two at once, and shows whether admin answers. */
  function every(ms, poll) {
    const run = async () => {
      try {
        await poll()
      } catch (error) {
        setStatus(`admin: ${error.message}`, 'bad')
      }
      setTimeout(run, ms)
    }
    run()
  }

  function setStatus(text, kind) {
    const status = byId('status')
    status.textContent = text
    status.className = `pill ${kind || ''}`
  }

  // What this proxy serves, from its /help index and /live/config's liveView (a page that would answer 404 is never asked for).
  const served = new Set()
  async function discover() {
    const text = await (await fetch('/help', { cache: 'no-store' })).text()
    for (const line of text.split('\n')) {
      const path = (line.split(' ')[1] || '').split(/[?[]/)[0]
      if (line.startsWith('GET ') && path) served.add(path)
    }
  }

  // ---- Traffic: charts from /live/history (or, on a proxy without it, rates from /stats counters) ----

  const traffic = {
    /** name → { direction, points: Map<unix second, point> } */
    rows: new Map(),
    by: 'service',
    charts: [],
    seriesKey: '',
    lastCounters: undefined,
    fromCounters: false,
  }

  function mergePoints(name, direction, points) {
    let row = traffic.rows.get(name)
    if (row === undefined) {
      row = { direction, points: new Map() }
      traffic.rows.set(name, row)
    }
    for (const p of points) {
      row.points.set(p.t, {
        rps: p.requestsPerSecond,
        success: p.successRate,
        p99: p.latencyMs ? p.latencyMs.p99 : null,
      })
    }
  }

  function trimHistory(now) {
    for (const [name, row] of traffic.rows) {
      for (const t of row.points.keys()) if (t <= now - HISTORY_SECONDS) row.points.delete(t)
      if (row.points.size === 0) traffic.rows.delete(name)
    }
  }

  async function pollHistory() {
    // Every second since the latest one held (and a few before it, which may have been partial), so a slow poll leaves no gap.
    let latest = 0
    for (const row of traffic.rows.values()) for (const t of row.points.keys()) if (t > latest) latest = t
    const behind = Math.ceil(Date.now() / 1000) - latest + 3
    const seconds = latest === 0 ? HISTORY_SECONDS : Math.min(HISTORY_SECONDS, Math.max(5, behind))
    const by = traffic.by
    const report = await getJson(`/live/history?by=${by}&seconds=${seconds}`)
    // A grouping chosen while this was asked for waits for the next poll.
    if (by !== traffic.by) return
    for (const row of report.rows) mergePoints(row.name, row.direction, row.points)
  }

  /** Envoy's per-cluster response classes (`cluster.<name>.upstream_rq_<n>xx`): rate and 5xx share per second. */
  async function pollCounters() {
    const filter = encodeURIComponent('^cluster\\..*\\.upstream_rq_[1-5]xx$')
    const stats = (await getJson(`/stats?format=json&filter=${filter}`)).stats
    const totals = new Map()
    for (const { name, value } of stats) {
      const match = /^cluster\.(.+)\.upstream_rq_([1-5])xx$/.exec(name)
      if (match === null || match[1].endsWith('.retry')) continue
      const total = totals.get(match[1]) || { requests: 0, failed: 0 }
      total.requests += value
      if (match[2] === '5') total.failed += value
      totals.set(match[1], total)
    }
    const now = Date.now()
    const previous = traffic.lastCounters
    traffic.lastCounters = { at: now, totals }
    if (previous === undefined) return
    const elapsed = (now - previous.at) / 1000
    const t = Math.floor(now / 1000)
    for (const [name, total] of totals) {
      const before = previous.totals.get(name) || { requests: 0, failed: 0 }
      const requests = total.requests - before.requests
      const failed = total.failed - before.failed
      mergePoints(name, name.startsWith('inbound|') ? 'inbound' : 'outbound', [
        {
          t,
          requestsPerSecond: requests / elapsed,
          successRate: requests > 0 ? 1 - failed / requests : null,
          latencyMs: null,
        },
      ])
    }
  }

  /** The rows drawn: the busiest over the last minute. */
  function chartedNames(now) {
    const recent = []
    for (const [name, row] of traffic.rows) {
      let requests = 0
      for (const [t, p] of row.points) if (t > now - 60) requests += p.rps
      recent.push([name, requests])
    }
    recent.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    return recent.slice(0, MAX_SERIES).map(([name]) => name)
  }

  function chartWidth(target) {
    return Math.max(240, target.clientWidth || target.parentElement.clientWidth)
  }

  function makeChart(target, names, yRange) {
    const opts = {
      width: chartWidth(target),
      height: 180,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true },
        y: yRange ? { range: yRange } : { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [
        { stroke: '#6b7385', grid: { stroke: '#eef0f3' }, ticks: { stroke: '#e2e5ea' } },
        { stroke: '#6b7385', grid: { stroke: '#eef0f3' }, ticks: { stroke: '#e2e5ea' }, size: 48 },
      ],
      series: [
        {},
        ...names.map((name, i) => ({
          label: name,
          stroke: palette[i % palette.length],
          width: 1.5,
          points: { show: false },
        })),
      ],
    }
    target.replaceChildren()
    // uPlot is the global that /dashboard/uplot.js (uPlot's IIFE build) defines.
    return new window.uPlot(opts, [[]], target)
  }

  function drawTraffic() {
    const rateTarget = byId('chart-rate')
    let now = Math.floor(Date.now() / 1000)
    for (const row of traffic.rows.values()) for (const t of row.points.keys()) if (t > now) now = t
    trimHistory(now)
    const names = chartedNames(now)
    const key = names.join('\n')
    if (key !== traffic.seriesKey || traffic.charts.length === 0) {
      for (const chart of traffic.charts) chart.destroy()
      traffic.charts = [
        makeChart(rateTarget, names),
        makeChart(byId('chart-success'), names, (_u, min) => [
          Math.min(90, Math.floor((min ?? 100) / 10) * 10),
          100,
        ]),
        makeChart(byId('chart-latency'), names),
      ]
      traffic.seriesKey = key
    }
    // From the first second known (at least a minute back, at most HISTORY_SECONDS), so a young proxy's charts are not mostly empty.
    let first = now - 59
    for (const row of traffic.rows.values()) for (const t of row.points.keys()) if (t < first) first = t
    const xs = []
    for (let t = Math.max(first, now - HISTORY_SECONDS + 1); t <= now; t++) xs.push(t)
    const series = { rps: [], success: [], p99: [] }
    let requests = 0
    let points = 0
    for (const name of names) {
      const row = traffic.rows.get(name)
      const pick = (read) => xs.map((t) => (row.points.has(t) ? read(row.points.get(t)) : null))
      series.rps.push(pick((p) => p.rps))
      series.success.push(pick((p) => (p.success === null ? null : p.success * 100)))
      series.p99.push(pick((p) => p.p99))
    }
    for (const row of traffic.rows.values()) {
      for (const p of row.points.values()) {
        if (p.rps > 0) points++
        requests += p.rps
      }
    }
    traffic.charts[0].setData([xs, ...series.rps])
    traffic.charts[1].setData([xs, ...series.success])
    traffic.charts[2].setData([xs, ...series.p99])
    // For tests and curious readers: how much traffic the charts hold now.
    rateTarget.dataset.requests = String(Math.round(requests))
    rateTarget.dataset.points = String(points)
    rateTarget.dataset.series = names.join(',')
    return names
  }

  async function drawTrafficTable(names) {
    let rows
    if (served.has('/live/stat') && !traffic.fromCounters) {
      rows = (await getJson(`/live/stat?by=${traffic.by}&window=10s`)).rows.filter(
        (r) => r.requests > 0 || r.tcpOpenConnections > 0,
      )
    } else {
      rows = []
      for (const [name, row] of traffic.rows) {
        const last = Math.max(...row.points.keys())
        const p = row.points.get(last)
        rows.push({
          name,
          direction: row.direction,
          requestsPerSecond: p.rps,
          successRate: p.success,
          latencyMs: null,
        })
      }
    }
    rows.sort((a, b) => b.requestsPerSecond - a.requestsPerSecond || (a.name < b.name ? -1 : 1))
    byId('traffic-table').tBodies[0].replaceChildren(
      ...rows.map((r) => {
        const index = names.indexOf(r.name)
        const swatch =
          index < 0
            ? ''
            : el('span', { class: 'swatch', style: `background:${palette[index % palette.length]}` })
        const latency = r.latencyMs || {}
        return el(
          'tr',
          {},
          el('td', {}, swatch),
          el('td', {}, r.name),
          el('td', {}, r.direction),
          el('td', { class: 'num' }, fixed(r.requestsPerSecond, 1)),
          el('td', { class: `num ${rateClass(r.successRate)}` }, percent(r.successRate)),
          el('td', { class: 'num' }, fixed(latency.p50, 1)),
          el('td', { class: 'num' }, fixed(latency.p95, 1)),
          el('td', { class: 'num' }, fixed(latency.p99, 1)),
        )
      }),
    )
  }

  async function pollTraffic() {
    if (traffic.fromCounters) await pollCounters()
    else await pollHistory()
    const names = drawTraffic()
    await drawTrafficTable(names)
  }

  function startTraffic(liveView) {
    traffic.fromCounters = !liveView || !served.has('/live/history')
    const select = byId('group-by')
    if (traffic.fromCounters) {
      traffic.by = 'cluster'
      select.value = 'cluster'
      select.disabled = true
      byId('traffic-note').textContent = liveView
        ? 'this proxy serves no /live/history: rates from the /stats counters, no latency'
        : 'the live view is off (bootstrap live.enabled: false): rates from the /stats counters, no latency'
    }
    select.addEventListener('change', () => {
      traffic.by = select.value
      traffic.rows.clear()
      traffic.seriesKey = ''
    })
    window.addEventListener('resize', () => {
      for (const chart of traffic.charts)
        chart.setSize({ width: chartWidth(chart.root.parentElement), height: 180 })
    })
    every(1000, pollTraffic)
  }

  // ---- Listeners and config: /live/config ----

  const messageText = (m) => `${m.file}:${m.line}: ${m.message}`

  function drawConfig(report) {
    const model = report.model
    if (model) {
      byId('identity').textContent = `${model.node.workload}.${model.node.namespace}`
    }
    setStatus(report.ready ? 'ready' : 'not ready', report.ready ? 'ok' : 'bad')
    byId('listeners')
      .querySelector('tbody')
      .replaceChildren(
        ...report.listeners.map((l) =>
          el(
            'tr',
            {},
            el('td', {}, `${l.address}:${l.port}`),
            el('td', {}, l.direction),
            el('td', {}, l.protocol),
            el('td', {}, l.serve),
            el(
              'td',
              { class: l.bound ? 'good' : 'bad' },
              l.bound ? 'bound' : `not bound${l.error ? `: ${l.error}` : ''}`,
            ),
            el('td', { class: 'num' }, l.connections),
          ),
        ),
      )
    const summary = byId('config-summary')
    const state = byId('config-state')
    if (!model) {
      summary.textContent = ''
      state.textContent = 'no model loaded yet'
      return
    }
    const kinds = Object.entries(model.resources)
      .map(([kind, n]) => `${kind} ${n}`)
      .join(', ')
    summary.textContent = `model v${model.version} · ${model.resourceCount} resources · ${model.clusterCount} clusters · reloads ${report.reloads.succeeded} ok / ${report.reloads.failed} rejected`
    state.replaceChildren(
      el(
        'p',
        { class: report.lastError ? 'bad' : 'good', id: 'config-verdict' },
        report.lastError
          ? `The latest reload was rejected at ${clock(report.lastError.at)}: model v${model.version} (compiled ${clock(model.compiledAt)}) keeps serving.`
          : `In force: model v${model.version}, compiled ${clock(model.compiledAt)}${report.lastRejection ? ', after the last rejected reload' : ''}.`,
      ),
      el(
        'p',
        { class: 'muted' },
        kinds ? `Resources: ${kinds}` : 'No resources.',
        el('br'),
        `Files: ${model.files.join(', ')}`,
      ),
    )
    const warnings = byId('config-warnings')
    warnings.replaceChildren(
      ...(model.warnings.length === 0
        ? [el('li', { class: 'muted' }, 'none')]
        : model.warnings.map((w) => el('li', {}, messageText(w)))),
    )
    const rejection = report.lastRejection
    const box = byId('rejection')
    box.hidden = !rejection
    if (rejection) {
      box.dataset.at = rejection.at
      byId('rejection-time').textContent =
        `${new Date(rejection.at).toLocaleString()}${report.lastError ? ' (the files on disk now)' : ' (a later reload succeeded)'}`
      byId('rejection-messages').replaceChildren(
        ...rejection.messages.map((m) => el('li', {}, messageText(m))),
      )
    }
  }

  // ---- Clusters and endpoints: /clusters?format=json ----

  function endpointHealth(host) {
    const health = host.health_status || {}
    if (health.failed_outlier_check) return ['ejected (outlier detection)', 'bad']
    if (health.eds_health_status && health.eds_health_status !== 'HEALTHY')
      return [health.eds_health_status.toLowerCase(), 'warn']
    return ['healthy', 'good']
  }

  function drawClusters(report) {
    const rows = []
    const sum = (hosts, stat) => hosts.reduce((total, h) => total + (h.stats[stat] || 0), 0)
    for (const cluster of report.cluster_statuses) {
      const hosts = cluster.host_statuses
      const healthy = hosts.filter((h) => endpointHealth(h)[1] === 'good').length
      rows.push(
        el(
          'tr',
          { class: 'cluster' },
          el('td', {}, cluster.name),
          el(
            'td',
            { class: healthy === hosts.length ? 'good' : healthy === 0 ? 'bad' : 'warn' },
            `${healthy}/${hosts.length} healthy`,
          ),
          el('td', { class: 'num' }, sum(hosts, 'rq_active')),
          el('td', { class: 'num' }, sum(hosts, 'rq_total')),
          el('td', { class: 'num' }, sum(hosts, 'cx_connect_fail')),
          el('td', {}),
          el('td', {}),
        ),
      )
      for (const host of hosts) {
        const [health, kind] = endpointHealth(host)
        const locality = Object.values(host.locality || {}).join('/')
        rows.push(
          el(
            'tr',
            { class: 'endpoint' },
            el('td', {}, host.address),
            el('td', { class: kind }, health),
            el('td', { class: 'num' }, host.stats.rq_active),
            el('td', { class: 'num' }, host.stats.rq_total),
            el('td', { class: 'num' }, host.stats.cx_connect_fail),
            el('td', { class: 'num' }, host.weight),
            el('td', {}, locality),
          ),
        )
      }
    }
    byId('clusters')
      .querySelector('tbody')
      .replaceChildren(...rows)
  }

  // ---- Tap: /tap?format=sse, read with fetch so that stop aborts it ----

  const tap = { events: [], received: 0, abort: undefined, dirty: false }

  const tapText = (e) =>
    `${e.method} ${e.authority} ${e.path} ${e.status} ${e.responseFlags} ${e.direction} ${e.upstreamHost} ${e.peer}`.toLowerCase()

  function drawTap() {
    if (!tap.dirty) return
    tap.dirty = false
    const filter = byId('tap-filter').value.trim().toLowerCase()
    const shown = []
    for (let i = tap.events.length - 1; i >= 0 && shown.length < TAP_ROWS; i--) {
      const e = tap.events[i]
      if (filter === '' || tapText(e).includes(filter)) shown.push(e)
    }
    const body = byId('tap-rows')
    body.dataset.received = String(tap.received)
    body.replaceChildren(
      ...shown.map((e) =>
        el(
          'tr',
          {},
          el('td', {}, clock(e.time)),
          el('td', {}, e.direction),
          el('td', {}, e.method),
          el('td', {}, e.authority),
          el('td', { class: 'wrap' }, e.path),
          el(
            'td',
            { class: `num ${e.status >= 500 || e.status === 0 ? 'bad' : e.status >= 400 ? 'warn' : ''}` },
            e.status,
          ),
          el('td', {}, e.responseFlags),
          el('td', { class: 'num' }, fixed(e.durationMs, 1)),
          el('td', { class: 'num' }, `${e.bytesReceived}/${e.bytesSent}`),
          el('td', {}, e.upstreamHost),
          el('td', { class: 'wrap' }, e.peer),
        ),
      ),
    )
  }

  function onTapEvent(event) {
    tap.events.push(event)
    if (tap.events.length > TAP_KEPT) tap.events.splice(0, tap.events.length - TAP_KEPT)
    tap.received++
    tap.dirty = true
  }

  async function runTap() {
    const button = byId('tap-toggle')
    const note = byId('tap-note')
    const controller = new AbortController()
    tap.abort = controller
    button.textContent = 'stop'
    note.textContent = 'tapping…'
    try {
      const res = await fetch('/tap?format=sse', {
        signal: controller.signal,
        headers: { accept: 'text/event-stream' },
      })
      if (!res.ok || !res.body) throw new Error(`/tap: HTTP ${res.status}`)
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
      let buffer = ''
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        buffer += value.replace(/\r\n?/g, '\n')
        let end = buffer.indexOf('\n\n')
        while (end >= 0) {
          const data = buffer
            .slice(0, end)
            .split('\n')
            .filter((line) => line.startsWith('data:'))
            .map((line) => line.slice(5).trimStart())
            .join('\n')
          buffer = buffer.slice(end + 2)
          if (data !== '') onTapEvent(JSON.parse(data))
          end = buffer.indexOf('\n\n')
        }
      }
      note.textContent = 'the tap ended'
    } catch (error) {
      note.textContent = error.name === 'AbortError' ? 'stopped' : `tap: ${error.message}`
    } finally {
      if (tap.abort === controller) tap.abort = undefined
      button.textContent = 'start'
    }
  }

  function startTapPanel() {
    const button = byId('tap-toggle')
    if (!served.has('/tap')) {
      button.disabled = true
      byId('tap-note').textContent = 'this proxy serves no /tap'
      return
    }
    button.addEventListener('click', () => {
      if (tap.abort) tap.abort.abort()
      else runTap()
    })
    byId('tap-filter').addEventListener('input', () => {
      tap.dirty = true
    })
    setInterval(drawTap, 250)
  }

  async function start() {
    await discover()
    const config = await getJson('/live/config')
    drawConfig(config)
    startTraffic(config.liveView)
    startTapPanel()
    setTimeout(() => every(2000, async () => drawConfig(await getJson('/live/config'))), 2000)
    every(2000, async () => drawClusters(await getJson('/clusters?format=json')))
  }

  start().catch((error) => setStatus(`admin: ${error.message}`, 'bad'))
})()
