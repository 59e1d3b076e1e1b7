// Envoy's previous_priorities retry priority (Istio's retryRemoteLocalities): later retries avoid the priority levels tried.

/** Istio configures the predicate with update_frequency 2. */
const UPDATE_FREQUENCY = 2

/**
 * Envoy's PreviousPrioritiesRetryPriority: the first UPDATE_FREQUENCY tries use the cluster's own
 * priority load; every UPDATE_FREQUENCY tries after that, the levels of every endpoint tried so far are
 * excluded, and the load is re-spread over the others. When that would leave no level with healthy
 * endpoints, the exclusions and the tries seen are forgotten and the unmodified load is used.
 */
export class PreviousPriorities {
  /** The priority level of each endpoint tried, in order. */
  #attempted: number[] = []
  /** A bit per excluded level. */
  #excluded = 0

  /** A try went to an endpoint of `level`. */
  attempted(level: number): void {
    this.#attempted.push(level)
  }

  /** The levels (a bit each) the next pick skips, given each level's health in percent. */
  skipLevels(health: readonly number[]): number {
    const tried = this.#attempted.length
    if (tried < UPDATE_FREQUENCY) return 0
    if (tried % UPDATE_FREQUENCY === 0) {
      for (const level of this.#attempted) this.#excluded |= 1 << level
      if (health.every((h, level) => h === 0 || (this.#excluded & (1 << level)) !== 0)) {
        this.#excluded = 0
        this.#attempted = []
      }
    }
    return this.#excluded
  }
}
