import { describe, expect, it } from 'vitest'
import { DeferredLines, type LineQuestion } from './deferred-lines.ts'
import type { ConfigMessage } from './messages.ts'

const message = (line: number, text: string): ConfigMessage => ({
  severity: 'warning',
  file: 'f.yaml',
  line,
  message: text,
})

describe('DeferredLines', () => {
  it('gives one negative placeholder per question, the same one when the question repeats', () => {
    const lines = new DeferredLines()
    const a = lines.placeholder(0, ['ingress', 0, 'port'])
    const b = lines.placeholder(1, ['ingress', 0, 'port'])
    expect(a).toBeLessThan(0)
    expect(b).toBeLessThan(0)
    expect(b).not.toBe(a)
    expect(lines.placeholder(0, ['ingress', 0, 'port'])).toBe(a)
  })

  it('asks once for the questions the messages hold and swaps in the answers; real lines stay', async () => {
    const lines = new DeferredLines()
    const mode = lines.placeholder(2, ['outboundTrafficPolicy', 'mode'])
    const unused = lines.placeholder(3, ['egress'])
    const port = lines.placeholder(0, ['ingress', 1, 'port'])
    const asked: LineQuestion[][] = []
    const resolved = await lines.resolve(
      [message(mode, 'a'), message(7, 'b'), message(port, 'c'), message(mode, 'd')],
      async (questions) => {
        asked.push(questions)
        return questions.map(([index]) => 100 + index)
      },
      () => -1,
    )
    expect(unused).toBeLessThan(0)
    expect(asked).toEqual([
      [
        [2, ['outboundTrafficPolicy', 'mode']],
        [0, ['ingress', 1, 'port']],
      ],
    ])
    expect(resolved.map((m) => [m.line, m.message])).toEqual([
      [102, 'a'],
      [7, 'b'],
      [100, 'c'],
      [102, 'd'],
    ])
  })

  it('does not ask when no message holds a placeholder, and falls back to the resource line when unanswered', async () => {
    const lines = new DeferredLines()
    let asks = 0
    const none = await lines.resolve(
      [message(3, 'x')],
      async () => {
        asks++
        return []
      },
      () => 0,
    )
    expect(none.map((m) => m.line)).toEqual([3])
    expect(asks).toBe(0)
    const placeholder = lines.placeholder(4, ['hosts'])
    const unanswered = await lines.resolve(
      [message(placeholder, 'y')],
      async () => undefined,
      (index) => index * 10,
    )
    expect(unanswered.map((m) => m.line)).toEqual([40])
  })
})
