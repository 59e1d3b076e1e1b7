// What the namespace pods' apps serve and answer: the ports and the HTTP reply, shared by the apps and the test.

/** The ports every pod app serves (a Kubernetes Service would name them http, tcp and grpc). */
export const appPorts = { http: 9080, tcp: 9000, grpc: 9090 } as const

/** What the HTTP app answers: who served, and what it saw of the caller. */
export interface AppReply {
  readonly pod: string
  readonly version: string
  readonly path: string
  /** The peer address of the app's socket: Istio's inbound passthrough connects from 127.0.0.6. */
  readonly remote: string | undefined
  /** The x-forwarded-client-cert header the server sidecar adds on an mTLS inbound request. */
  readonly xfcc: string | null
}
