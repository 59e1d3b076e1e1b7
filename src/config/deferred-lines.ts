// Source lines the compiler asks for while the text is elsewhere: each question gets a placeholder line, answered in one batch later.

import type { ConfigMessage } from './messages.ts'
import type { SpecPath } from './resource.ts'

/** One question: `spec.<path>` of the resource at `index` in the reader's list. */
export type LineQuestion = readonly [index: number, path: SpecPath]

/**
 * The compiler reads `resource.lineOf(path)` synchronously, but the YAML that knows lines stays in the
 * config reader (read-config.ts). So `placeholder` answers a negative number standing for the question
 * (real lines are 0 or more), the same number for the same question, and `resolve` swaps the real lines
 * into the messages once the reader has answered the questions those messages hold.
 */
export class DeferredLines {
  readonly #questions: LineQuestion[] = []
  readonly #byKey = new Map<string, number>()

  /** The placeholder for `spec.<path>` of resource `index`. */
  placeholder(index: number, path: SpecPath): number {
    const key = `${index}${JSON.stringify(path)}`
    let n = this.#byKey.get(key)
    if (n === undefined) {
      n = this.#questions.push([index, [...path]]) - 1
      this.#byKey.set(key, n)
    }
    return -1 - n
  }

  /**
   * `messages` with each placeholder replaced by its real line: `ask` gets the questions behind them (each
   * once) and answers their lines in order, or undefined when it cannot (then `firstLineOf` the resource).
   */
  async resolve(
    messages: readonly ConfigMessage[],
    ask: (questions: LineQuestion[]) => Promise<readonly number[] | undefined>,
    firstLineOf: (index: number) => number,
  ): Promise<ConfigMessage[]> {
    const placeholders = [...new Set(messages.filter((m) => m.line < 0).map((m) => m.line))]
    if (placeholders.length === 0) return [...messages]
    const questions = placeholders.map((line) => this.#questions[-1 - line])
    const lines = await ask(questions)
    const answers = new Map(placeholders.map((placeholder, i) => [placeholder, lines?.[i]]))
    return messages.map((m) => {
      if (m.line >= 0) return m
      return { ...m, line: answers.get(m.line) ?? firstLineOf(this.#questions[-1 - m.line][0]) }
    })
  }
}
