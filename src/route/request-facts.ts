// What route matching may ask of a request; the HTTP layer answers lazily so unused facts cost nothing.

export interface RequestFacts {
  readonly method: string
  /** The path without the query string. */
  readonly path: string
  readonly scheme: string
  /** The Host / :authority as sent (may carry a port). */
  readonly authority: string
  /** The service port the request is addressed to. */
  readonly port: number
  /** Value of a header by lowercase name, repeated headers joined with `, `. */
  header(name: string): string | undefined
  /** First value of a query parameter, undefined when absent. */
  queryParam(name: string): string | undefined
}
