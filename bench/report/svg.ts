// A dependency-free SVG chart: a grid of horizontal bar panels (one metric each, one bar per system).

export interface Bar {
  readonly label: string
  readonly value: number
  /** Drawn in the accent colour (Outrigger's bars). */
  readonly accent?: boolean
}

export interface Panel {
  readonly title: string
  /** Formats a value for the label at the bar's end. */
  readonly format: (value: number) => string
  readonly bars: readonly Bar[]
}

const PANEL_WIDTH = 520
const BAR_HEIGHT = 20
const BAR_GAP = 6
const LABEL_WIDTH = 190
const VALUE_WIDTH = 90
const TITLE_HEIGHT = 34
const PAD = 16

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function panelHeight(panel: Panel): number {
  return TITLE_HEIGHT + panel.bars.length * (BAR_HEIGHT + BAR_GAP) + PAD
}

function drawPanel(panel: Panel, x: number, y: number): string {
  const bars = panel.bars.filter((b) => Number.isFinite(b.value))
  const max = Math.max(...bars.map((b) => b.value), Number.MIN_VALUE)
  const span = PANEL_WIDTH - LABEL_WIDTH - VALUE_WIDTH - PAD
  const parts = [`<text x="${x}" y="${y + 20}" class="title">${escapeXml(panel.title)}</text>`]
  bars.forEach((bar, i) => {
    const top = y + TITLE_HEIGHT + i * (BAR_HEIGHT + BAR_GAP)
    const width = Math.max(1, (bar.value / max) * span)
    const mid = top + BAR_HEIGHT / 2 + 4
    parts.push(
      `<text x="${x + LABEL_WIDTH - 8}" y="${mid}" class="label">${escapeXml(bar.label)}</text>`,
      `<rect x="${x + LABEL_WIDTH}" y="${top}" width="${width.toFixed(1)}" height="${BAR_HEIGHT}" class="${bar.accent ? 'accent' : 'bar'}"/>`,
      `<text x="${x + LABEL_WIDTH + width + 6}" y="${mid}" class="value">${escapeXml(panel.format(bar.value))}</text>`,
    )
  })
  return parts.join('\n')
}

/** Lays panels out two per row under a heading and returns the SVG document. */
export function renderChart(heading: string, subheading: string, panels: readonly Panel[]): string {
  const columns = 2
  const top = 56
  const rows: Panel[][] = []
  for (let i = 0; i < panels.length; i += columns) rows.push(panels.slice(i, i + columns))
  const body: string[] = []
  let y = top
  for (const row of rows) {
    row.forEach((panel, col) => {
      body.push(drawPanel(panel, PAD + col * (PANEL_WIDTH + PAD), y))
    })
    y += Math.max(...row.map(panelHeight))
  }
  const width = PAD + columns * (PANEL_WIDTH + PAD)
  const height = y + PAD
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">
<style>
.bg { fill: #ffffff; }
.heading { font-size: 18px; font-weight: 600; fill: #1f2328; }
.sub { font-size: 12px; fill: #59636e; }
.title { font-size: 14px; font-weight: 600; fill: #1f2328; }
.label { font-size: 12px; fill: #1f2328; text-anchor: end; }
.value { font-size: 12px; fill: #59636e; }
.bar { fill: #8c959f; }
.accent { fill: #0969da; }
</style>
<rect class="bg" width="100%" height="100%"/>
<text x="${PAD}" y="26" class="heading">${escapeXml(heading)}</text>
<text x="${PAD}" y="44" class="sub">${escapeXml(subheading)}</text>
${body.join('\n')}
</svg>
`
}
