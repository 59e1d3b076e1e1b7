// undici's Pool, Client and errors loaded from their own files: undici's index also loads fetch, WebSocket, cache stores and mock agents, about 10 MiB an idle sidecar would hold for nothing.

import { createRequire } from 'node:module'
import type * as Undici from 'undici'

// undici has no "exports" map, so its files are reachable by path; these are the ones its index re-exports
// (undici/index.js: `require('./lib/dispatcher/pool')`, …), so instanceof and the types hold. The index also
// adds the request/stream/pipeline/connect/upgrade API to Dispatcher.prototype: the proxy only calls dispatch.
const require = createRequire(import.meta.url)

export const Pool = require('undici/lib/dispatcher/pool.js') as typeof Undici.Pool
export type Pool = Undici.Pool
export declare namespace Pool {
  export type Options = Undici.Pool.Options
}

export const Client = require('undici/lib/dispatcher/client.js') as typeof Undici.Client
export type Client = Undici.Client
export declare namespace Client {
  export type Options = Undici.Client.Options
}

export const errors = require('undici/lib/core/errors.js') as typeof Undici.errors
