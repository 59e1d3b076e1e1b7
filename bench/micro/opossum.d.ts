// The part of opossum's API the micro-benchmark uses (the package ships no types).

declare module 'opossum' {
  interface Options {
    timeout?: number | false
    resetTimeout?: number
    errorThresholdPercentage?: number
    rollingCountTimeout?: number
    rollingCountBuckets?: number
    rollingPercentilesEnabled?: boolean
    enableSnapshots?: boolean
    volumeThreshold?: number
  }
  class CircuitBreaker<A extends unknown[], R> {
    constructor(action: (...args: A) => Promise<R>, options?: Options)
    fire(...args: A): Promise<R>
    shutdown(): void
    readonly opened: boolean
  }
  export default CircuitBreaker
}
