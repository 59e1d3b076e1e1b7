// node:http's values, required rather than imported: an ES import builds the module's namespace, whose WebSocket, CloseEvent and MessageEvent getters load node's bundled undici (1.5 MiB of a sidecar's RSS) that the proxy never uses.

import { createRequire } from 'node:module'

const http = createRequire(import.meta.url)('node:http') as typeof import('node:http')

export const { createServer, request, METHODS, STATUS_CODES, ServerResponse } = http
