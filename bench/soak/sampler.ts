// Samples the proxy every 2 s: RSS from /proc/<pid>/status, V8 heap used and open handles from admin /memory.

import { readFileSync } from 'node:fs'

export interface Sample {
  /** Seconds since the traffic started. */
  readonly t: number
  readonly rssMiB: number
  readonly heapMiB: number
  /** What V8 holds for its heap (admin /memory `heap_size`): RSS follows it as V8 sizes the heap for the load. */
  readonly heapTotalMiB: number
  /** Handles and timers of the proxy's one thread (admin /memory `active_resources`, summed). */
  readonly handles: number
  readonly kinds: Readonly<Record<string, number>>
}

interface MemoryPage {
  readonly allocated: string
  readonly heap_size: string
  readonly active_resources: Record<string, number>
}

export const SAMPLE_EVERY_MS = 2_000

function rssMiB(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return match === null ? Number.NaN : Number(match[1]) / 1024
}

export class Sampler {
  readonly samples: Sample[] = []
  readonly #pid: number
  readonly #adminPort: number
  readonly #start: number
  #timer: NodeJS.Timeout | undefined
  /** Admin answers that failed or timed out (the proxy too busy to answer in 1 s counts too). */
  missed = 0

  constructor(pid: number, adminPort: number, start: number) {
    this.#pid = pid
    this.#adminPort = adminPort
    this.#start = start
  }

  start(): void {
    this.#timer = setInterval(() => void this.sample(true), SAMPLE_EVERY_MS)
  }

  stop(): void {
    clearInterval(this.#timer)
  }

  /** One sample now; `keep` adds it to the series the verdict judges (a snapshot outside the traffic is not). */
  async sample(keep = false): Promise<Sample | undefined> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.#adminPort}/memory`, {
        signal: AbortSignal.timeout(1_000),
      })
      const page = (await res.json()) as MemoryPage
      const kinds = page.active_resources
      const sample: Sample = {
        t: (performance.now() - this.#start) / 1000,
        rssMiB: rssMiB(this.#pid),
        heapMiB: Number(page.allocated) / 2 ** 20,
        heapTotalMiB: Number(page.heap_size) / 2 ** 20,
        handles: Object.values(kinds).reduce((a, b) => a + b, 0),
        kinds,
      }
      if (keep) this.samples.push(sample)
      return sample
    } catch {
      this.missed++
      return undefined
    }
  }
}
