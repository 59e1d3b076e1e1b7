// A token bucket as Envoy's local rate limit keeps one: starts full, refills whole intervals lazily.

export class TokenBucket {
  readonly #maxTokens: number
  readonly #tokensPerFill: number
  readonly #fillIntervalMs: number
  #tokens: number
  #lastFill: number

  constructor(maxTokens: number, tokensPerFill: number, fillIntervalMs: number, now = performance.now()) {
    this.#maxTokens = maxTokens
    this.#tokensPerFill = tokensPerFill
    this.#fillIntervalMs = fillIntervalMs
    this.#tokens = maxTokens
    this.#lastFill = now
  }

  /** Takes one token; false when the bucket is empty. */
  take(now = performance.now()): boolean {
    const intervals = Math.floor((now - this.#lastFill) / this.#fillIntervalMs)
    if (intervals > 0) {
      this.#tokens = Math.min(this.#maxTokens, this.#tokens + intervals * this.#tokensPerFill)
      this.#lastFill += intervals * this.#fillIntervalMs
    }
    if (this.#tokens === 0) return false
    this.#tokens--
    return true
  }
}
