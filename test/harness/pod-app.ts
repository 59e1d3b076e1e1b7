// An ordinary app for namespace pods (it knows nothing of the proxy): HTTP servers that answer with what they saw, and TCP echo servers.

import type { ChildProcess } from 'node:child_process'
import type { Pod } from './netns.ts'

/**
 * The app's source: `http:<port>` answers JSON {app, remote, host, url}; `tcp:<port>` echoes with a
 * prefix; `grpc:<port>` echoes a gRPC message over h2c; `tls:<port>` echoes the same over TLS with the key and certificate in APP_TLS_KEY / APP_TLS_CERT.
 */
const appSource = `
const http = require('node:http'), net = require('node:net'), tls = require('node:tls')
const name = process.argv[1]
let pending = 0
const ready = () => { if (--pending === 0) process.stdout.write('ready\\n') }
for (const spec of process.argv.slice(2)) {
  const [kind, port] = spec.split(':')
  pending++
  if (kind === 'http') {
    http.createServer((req, res) => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ app: name, remote: req.socket.remoteAddress, local: req.socket.localPort, host: req.headers.host, url: req.url }))
    }).listen({ port: Number(port), host: '::' }, ready)
  } else if (kind === 'grpc') {
    // gRPC on the wire (h2c): echoes the request's message, trailers grpc-status 0 and the app's name.
    require('node:http2').createServer((req, res) => {
      const chunks = []
      req.on('data', (d) => chunks.push(d))
      req.on('end', () => {
        res.setHeader('content-type', 'application/grpc')
        res.addTrailers({ 'grpc-status': '0', 'x-app': name })
        res.end(Buffer.concat(chunks))
      })
    }).listen({ port: Number(port), host: '::' }, ready)
  } else if (kind === 'tls') {
    tls.createServer({ key: process.env.APP_TLS_KEY, cert: process.env.APP_TLS_CERT }, (s) => s.on('data', (d) => s.write(name + ':' + d)))
      .listen({ port: Number(port), host: '::' }, ready)
  } else {
    net.createServer((s) => s.on('data', (d) => s.write(name + ':' + d))).listen({ port: Number(port), host: '::' }, ready)
  }
}
`

/** Starts the app in `pod` as `name` with its servers (`http:8080`, `tcp:9000`); resolves once all listen. */
export function startPodApp(
  pod: Pod,
  name: string,
  servers: readonly string[],
  tlsCert?: { readonly key: string; readonly cert: string },
): Promise<ChildProcess> {
  const env =
    tlsCert === undefined
      ? process.env
      : { ...process.env, APP_TLS_KEY: tlsCert.key, APP_TLS_CERT: tlsCert.cert }
  const child = pod.node(['-e', appSource, name, ...servers], { env })
  return new Promise((resolve, reject) => {
    let err = ''
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString()
    })
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve(child)
    })
    child.once('exit', (code) => reject(new Error(`app ${name} exited ${code}: ${err}`)))
  })
}

/**
 * Runs a client inside `pod` (as root: its traffic is captured) and returns what it printed. `script` is
 * an ES module body; `fetch`, `net` and `http` are in scope, and it prints its result.
 */
export function podClient(pod: Pod, script: string): string {
  const source = `import net from 'node:net'\nimport http from 'node:http'\n${script}`
  return pod.exec(process.execPath, ['--input-type=module', '-e', source]).trim()
}

/** A client script that sends `text` over TCP to `host:port` and prints the reply, or `closed` if the connection ends without one. */
export function tcpExchange(host: string, port: number, text: string): string {
  return `
const socket = net.connect({ host: ${JSON.stringify(host)}, port: ${port} })
let reply = ''
socket.on('connect', () => socket.write(${JSON.stringify(text)}))
socket.on('data', (d) => { reply += d; socket.end() })
socket.on('error', () => {})
socket.on('close', () => console.log(reply === '' ? 'closed' : reply))
setTimeout(() => { console.log(reply === '' ? 'timeout' : reply); process.exit(0) }, 5000).unref()
`
}

/** A client script that sends `text` over TLS with `servername` as SNI to `host:port` and prints the reply, or `closed`. */
export function tlsExchange(host: string, port: number, servername: string, text: string): string {
  return `
import tls from 'node:tls'
const socket = tls.connect({ host: ${JSON.stringify(host)}, port: ${port}, servername: ${JSON.stringify(servername)}, rejectUnauthorized: false })
let reply = ''
socket.on('secureConnect', () => socket.write(${JSON.stringify(text)}))
socket.on('data', (d) => { reply += d; socket.end() })
socket.on('error', () => {})
socket.on('close', () => console.log(reply === '' ? 'closed' : reply))
setTimeout(() => { console.log(reply === '' ? 'timeout' : reply); process.exit(0) }, 5000).unref()
`
}

/**
 * A client script that sends one gRPC request (h2c, prior knowledge) to `host:port` with `authority` and
 * prints JSON {status, grpcStatus, app, echoed}, or `error <message>`.
 */
export function grpcCall(host: string, port: number, authority: string, text: string): string {
  return `
import http2 from 'node:http2'
const session = http2.connect(${JSON.stringify(`http://${host}:${port}`)})
session.on('error', (e) => { console.log('error ' + e.message); process.exit(0) })
const message = Buffer.from(${JSON.stringify(text)})
const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), message])
const stream = session.request({ ':method': 'POST', ':path': '/echo.Echo/Say', ':authority': ${JSON.stringify(authority)}, 'content-type': 'application/grpc', te: 'trailers' })
let status = 0
const chunks = []
stream.on('response', (h) => { status = h[':status'] })
stream.on('data', (d) => chunks.push(d))
stream.on('trailers', (t) => {
  console.log(JSON.stringify({ status, grpcStatus: t['grpc-status'], app: t['x-app'], echoed: Buffer.concat(chunks).subarray(5).toString() }))
  session.close()
})
stream.on('error', (e) => { console.log('error ' + e.message); session.close() })
stream.end(frame)
`
}

/** A client script that GETs `url` with `host` and prints `<status> <body>`, or `error <code>`. */
export function httpGet(url: string, host?: string): string {
  return `
const req = http.get(${JSON.stringify(url)}, { headers: ${JSON.stringify(host === undefined ? {} : { host })}, agent: false }, (res) => {
  let body = ''
  res.on('data', (d) => { body += d })
  res.on('end', () => console.log(res.statusCode + ' ' + body))
})
req.on('error', (e) => console.log('error ' + e.code))
req.setTimeout(5000, () => { console.log('error timeout'); req.destroy() })
`
}
