// Telemetry accessLogging filter expressions: the simple part of CEL over Envoy's attributes, parsed to plain data and evaluated per entry.

import type { RequestRecord } from './request-record.ts'
import { responseFlagMask } from './response-flags.ts'
import type { TcpRecord } from './tcp-record.ts'
import type { AccessLogFilter, FilterAttribute, FilterLiteral, FilterNode } from './telemetry-policy.ts'

type AttributeType = 'int' | 'string' | 'bool' | 'map'

/**
 * The Envoy attributes a filter may read (envoy docs: intro/arch_overview/advanced/attributes) and
 * their CEL types. Ports, sizes, codes and flags are integers; addresses are `ip:port` strings.
 */
const attributeTypes: Readonly<Record<string, AttributeType>> = {
  'response.code': 'int',
  'response.code_details': 'string',
  'response.flags': 'int',
  'response.grpc_status': 'int',
  'response.size': 'int',
  'request.method': 'string',
  'request.path': 'string',
  'request.url_path': 'string',
  'request.query': 'string',
  'request.host': 'string',
  'request.scheme': 'string',
  'request.protocol': 'string',
  'request.id': 'string',
  'request.useragent': 'string',
  'request.referer': 'string',
  'request.size': 'int',
  'request.headers': 'map',
  'connection.mtls': 'bool',
  'connection.requested_server_name': 'string',
  'connection.termination_details': 'string',
  'source.address': 'string',
  'source.port': 'int',
  'destination.address': 'string',
  'destination.port': 'int',
  'upstream.address': 'string',
  'upstream.port': 'int',
  'upstream.transport_failure_reason': 'string',
  'xds.cluster_name': 'string',
  'xds.route_name': 'string',
}

type Token =
  | { readonly t: 'ident'; readonly v: string; readonly at: number }
  | { readonly t: 'string'; readonly v: string; readonly at: number }
  | { readonly t: 'number'; readonly v: number; readonly at: number }
  | { readonly t: 'op'; readonly v: string; readonly at: number }
  | { readonly t: 'end'; readonly at: number }

class FilterSyntaxError extends Error {}

const operators = ['&&', '||', '==', '!=', '<=', '>=', '<', '>', '!', '(', ')', '[', ']', '.', ',']

function tokenize(source: string): Token[] {
  const tokens: Token[] = []
  let i = 0
  while (i < source.length) {
    const c = source[i]
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++
      continue
    }
    const start = i
    if (/[A-Za-z_]/.test(c)) {
      while (i < source.length && /[A-Za-z0-9_]/.test(source[i])) i++
      tokens.push({ t: 'ident', v: source.slice(start, i), at: start })
      continue
    }
    if (/[0-9]/.test(c)) {
      while (i < source.length && /[0-9]/.test(source[i])) i++
      const digits = source.slice(start, i)
      if (source[i] === 'u' || source[i] === 'U') i++ // a CEL uint: the same number here
      tokens.push({ t: 'number', v: Number(digits), at: start })
      continue
    }
    if (c === "'" || c === '"') {
      let value = ''
      i++
      while (i < source.length && source[i] !== c) {
        if (source[i] === '\\' && i + 1 < source.length) i++
        value += source[i]
        i++
      }
      if (i >= source.length) throw new FilterSyntaxError(`unterminated string at ${start}`)
      i++
      tokens.push({ t: 'string', v: value, at: start })
      continue
    }
    const op = operators.find((o) => source.startsWith(o, i))
    if (op === undefined) throw new FilterSyntaxError(`unexpected '${c}' at ${start}`)
    i += op.length
    tokens.push({ t: 'op', v: op, at: start })
  }
  tokens.push({ t: 'end', at: source.length })
  return tokens
}

/** A recursive-descent parser of: || && ! ( ) comparisons, `in`, has(), startsWith/endsWith/contains. */
class Parser {
  readonly #tokens: Token[]
  #pos = 0

  constructor(tokens: Token[]) {
    this.#tokens = tokens
  }

  parse(): FilterNode {
    const node = this.#or()
    const next = this.#peek()
    if (next.t !== 'end') throw new FilterSyntaxError(`unexpected ${describe(next)}`)
    return node
  }

  #peek(): Token {
    return this.#tokens[this.#pos]
  }

  #isOp(v: string): boolean {
    const token = this.#peek()
    return token.t === 'op' && token.v === v
  }

  #expectOp(v: string): void {
    if (!this.#isOp(v)) throw new FilterSyntaxError(`expected '${v}', found ${describe(this.#peek())}`)
    this.#pos++
  }

  #or(): FilterNode {
    let left = this.#and()
    while (this.#isOp('||')) {
      this.#pos++
      left = { kind: 'or', left, right: this.#and() }
    }
    return left
  }

  #and(): FilterNode {
    let left = this.#unary()
    while (this.#isOp('&&')) {
      this.#pos++
      left = { kind: 'and', left, right: this.#unary() }
    }
    return left
  }

  #unary(): FilterNode {
    if (this.#isOp('!')) {
      this.#pos++
      return { kind: 'not', operand: this.#unary() }
    }
    return this.#relation()
  }

  #relation(): FilterNode {
    const left = this.#operand()
    const token = this.#peek()
    if (token.t === 'op' && ['==', '!=', '<', '<=', '>', '>='].includes(token.v)) {
      this.#pos++
      return compare(token.v as CompareOp, left, this.#operand())
    }
    if (token.t === 'ident' && token.v === 'in') {
      this.#pos++
      return this.#membership(left)
    }
    if (left.kind === 'node') return left.node
    if (left.kind === 'attribute') {
      if (attributeTypes[left.attribute.name] !== 'bool')
        throw new FilterSyntaxError(`'${attributeText(left.attribute)}' is not a boolean`)
      return { kind: 'attribute', attribute: left.attribute }
    }
    if (typeof left.value === 'boolean') return { kind: 'literal', value: left.value }
    throw new FilterSyntaxError(`${JSON.stringify(left.value)} is not a condition`)
  }

  #membership(left: Operand): FilterNode {
    // `'x-user' in request.headers`, or `response.code in [500, 503]`.
    if (left.kind === 'literal' && typeof left.value === 'string') {
      const map = this.#operand()
      if (map.kind !== 'attribute' || attributeTypes[map.attribute.name] !== 'map' || map.attribute.key)
        throw new FilterSyntaxError("only `'<name>' in request.headers` tests a map")
      return { kind: 'has', attribute: { name: map.attribute.name, key: left.value.toLowerCase() } }
    }
    if (left.kind !== 'attribute') throw new FilterSyntaxError("'in' needs an attribute on its left")
    this.#expectOp('[')
    const values: FilterLiteral[] = []
    while (!this.#isOp(']')) {
      const item = this.#operand()
      if (item.kind !== 'literal') throw new FilterSyntaxError('a list holds literals only')
      checkType(left.attribute, item.value)
      values.push(item.value)
      if (!this.#isOp(']')) this.#expectOp(',')
    }
    this.#pos++
    return { kind: 'in', attribute: left.attribute, values }
  }

  #operand(): Operand {
    const token = this.#peek()
    if (token.t === 'op' && token.v === '(') {
      this.#pos++
      const node = this.#or()
      this.#expectOp(')')
      return { kind: 'node', node }
    }
    if (token.t === 'op' && token.v === '!') return { kind: 'node', node: this.#unary() }
    this.#pos++
    if (token.t === 'string' || token.t === 'number') return { kind: 'literal', value: token.v }
    if (token.t !== 'ident') throw new FilterSyntaxError(`unexpected ${describe(token)}`)
    if (token.v === 'true' || token.v === 'false') return { kind: 'literal', value: token.v === 'true' }
    if (token.v === 'has' && this.#isOp('(')) {
      this.#pos++
      const inner = this.#operand()
      this.#expectOp(')')
      if (inner.kind !== 'attribute') throw new FilterSyntaxError('has() takes an attribute')
      return { kind: 'node', node: { kind: 'has', attribute: inner.attribute } }
    }
    return this.#attribute(token.v, token.at)
  }

  /** `a.b`, `a.b['key']`, and a string method call on it: `.startsWith('x')`. */
  #attribute(first: string, at: number): Operand {
    const parts = [first]
    while (this.#isOp('.')) {
      this.#pos++
      const next = this.#peek()
      if (next.t !== 'ident')
        throw new FilterSyntaxError(`expected a name after '.', found ${describe(next)}`)
      this.#pos++
      if (this.#isOp('(')) return this.#stringCall(parts.join('.'), next.v, at)
      parts.push(next.v)
    }
    const name = parts.join('.')
    const type = attributeTypes[name]
    if (type === undefined) throw new FilterSyntaxError(`attribute '${name}' is not supported`)
    // A map on its own is only the right side of `'<name>' in request.headers`.
    if (type !== 'map' || !this.#isOp('[')) return { kind: 'attribute', attribute: { name } }
    this.#expectOp('[')
    const key = this.#peek()
    if (key.t !== 'string') throw new FilterSyntaxError(`a ${name} key is a string, found ${describe(key)}`)
    this.#pos++
    this.#expectOp(']')
    const attribute = { name, key: key.v.toLowerCase() }
    if (this.#isOp('.')) {
      this.#pos++
      const method = this.#peek()
      if (method.t !== 'ident') throw new FilterSyntaxError(`unexpected ${describe(method)}`)
      this.#pos++
      return this.#call(attribute, method.v)
    }
    return { kind: 'attribute', attribute }
  }

  #stringCall(name: string, method: string, at: number): Operand {
    const type = attributeTypes[name]
    if (type === undefined) throw new FilterSyntaxError(`attribute '${name}' is not supported (at ${at})`)
    return this.#call({ name }, method)
  }

  #call(attribute: FilterAttribute, method: string): Operand {
    if (method !== 'startsWith' && method !== 'endsWith' && method !== 'contains')
      throw new FilterSyntaxError(`function '${method}' is not supported`)
    if (attributeTypes[attribute.name] === 'int' || attributeTypes[attribute.name] === 'bool')
      throw new FilterSyntaxError(`'${attributeText(attribute)}' is not a string`)
    this.#expectOp('(')
    const argument = this.#peek()
    if (argument.t !== 'string') throw new FilterSyntaxError(`${method}() takes a string`)
    this.#pos++
    this.#expectOp(')')
    return { kind: 'node', node: { kind: 'string', fn: method, attribute, value: argument.v } }
  }
}

type CompareOp = '==' | '!=' | '<' | '<=' | '>' | '>='

type Operand =
  | { readonly kind: 'attribute'; readonly attribute: FilterAttribute }
  | { readonly kind: 'literal'; readonly value: FilterLiteral }
  | { readonly kind: 'node'; readonly node: FilterNode }

const flipped: Readonly<Record<CompareOp, CompareOp>> = {
  '==': '==',
  '!=': '!=',
  '<': '>',
  '<=': '>=',
  '>': '<',
  '>=': '<=',
}

function compare(op: CompareOp, left: Operand, right: Operand): FilterNode {
  if (left.kind === 'attribute' && right.kind === 'literal') {
    checkType(left.attribute, right.value)
    return { kind: 'compare', op, attribute: left.attribute, value: right.value }
  }
  if (left.kind === 'literal' && right.kind === 'attribute') {
    checkType(right.attribute, left.value)
    return { kind: 'compare', op: flipped[op], attribute: right.attribute, value: left.value }
  }
  throw new FilterSyntaxError(`'${op}' compares an attribute with a literal only`)
}

function checkType(attribute: FilterAttribute, value: FilterLiteral): void {
  const type = attributeTypes[attribute.name]
  if (type === 'map' && attribute.key === undefined)
    throw new FilterSyntaxError(`'${attribute.name}' is a map: compare one of its keys`)
  const expected = type === 'int' ? 'number' : type === 'bool' ? 'boolean' : 'string'
  if (typeof value !== expected)
    throw new FilterSyntaxError(`'${attributeText(attribute)}' is compared with ${JSON.stringify(value)}`)
}

function attributeText(attribute: FilterAttribute): string {
  return attribute.key === undefined ? attribute.name : `${attribute.name}['${attribute.key}']`
}

function describe(token: Token): string {
  return token.t === 'end' ? 'the end' : `'${token.v}' at ${token.at}`
}

/**
 * Parses a Telemetry `accessLogging[].filter.expression`. The supported CEL: `&&`, `||`, `!`,
 * parentheses, comparisons of an attribute with a literal (`response.code >= 400`,
 * `request.headers['x-user'] == 'jason'`, `response.flags != 0`), `attribute in [literals]`,
 * `'name' in request.headers`, `has(...)`, and `.startsWith/.endsWith/.contains('...')` on strings.
 * Anything else is an error naming the part that is not supported.
 */
export function parseAccessLogFilter(expression: string): { filter: AccessLogFilter } | { error: string } {
  try {
    const root = new Parser(tokenize(expression)).parse()
    return { filter: { expression, root } }
  } catch (err) {
    if (err instanceof FilterSyntaxError) return { error: `unsupported filter expression: ${err.message}` }
    throw err
  }
}

type Entry = { readonly http: RequestRecord } | { readonly tcp: TcpRecord }

function port(hostPort: string | undefined): number | undefined {
  if (hostPort === undefined) return undefined
  const value = Number(hostPort.slice(hostPort.lastIndexOf(':') + 1))
  return Number.isInteger(value) ? value : undefined
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === '' ? undefined : value
}

/** What HTTP requests and TCP connections both carry of their connections. */
type ConnectionFields = Pick<
  RequestRecord & TcpRecord,
  | 'responseFlags'
  | 'peer'
  | 'downstreamRemoteAddress'
  | 'downstreamLocalAddress'
  | 'upstreamHostPort'
  | 'upstreamTransportFailureReason'
  | 'clusterName'
>

/** Marks an attribute that is not one of the connection attributes both kinds of entry have. */
const notShared = Symbol('not a connection attribute')

/** The attributes an HTTP request and a TCP connection read alike. */
function connectionAttribute(
  name: string,
  c: ConnectionFields,
): FilterLiteral | undefined | typeof notShared {
  switch (name) {
    case 'response.flags':
      return responseFlagMask(c.responseFlags)
    case 'connection.mtls':
      return c.peer !== undefined
    case 'source.address':
      return c.downstreamRemoteAddress
    case 'source.port':
      return port(c.downstreamRemoteAddress)
    case 'destination.address':
      return c.downstreamLocalAddress
    case 'destination.port':
      return port(c.downstreamLocalAddress)
    case 'upstream.address':
      return c.upstreamHostPort
    case 'upstream.port':
      return port(c.upstreamHostPort)
    case 'upstream.transport_failure_reason':
      return nonEmpty(c.upstreamTransportFailureReason)
    case 'xds.cluster_name':
      return nonEmpty(c.clusterName)
    default:
      return notShared
  }
}

/** An attribute's value, or undefined when the entry has none (CEL: no such attribute, an error). */
function attributeValue(entry: Entry, attribute: FilterAttribute): FilterLiteral | undefined {
  const name = attribute.name
  const record = 'tcp' in entry ? entry.tcp : entry.http
  const shared = connectionAttribute(name, record)
  if (shared !== notShared) return shared
  if ('tcp' in entry) {
    const c = entry.tcp
    switch (name) {
      case 'connection.requested_server_name':
        return c.sni ?? ''
      case 'connection.termination_details':
        return nonEmpty(c.terminationDetails)
      default:
        return undefined
    }
  }
  const r = entry.http
  switch (name) {
    case 'response.code':
      return r.responseStatus === 0 ? undefined : r.responseStatus
    case 'response.code_details':
      return nonEmpty(r.responseCodeDetails)
    case 'response.grpc_status':
      return r.grpcStatus === undefined ? undefined : Number(r.grpcStatus)
    case 'response.size':
      return r.responseBodyBytes
    case 'request.method':
      return r.method
    case 'request.path':
      return r.url
    case 'request.url_path':
      return r.path
    case 'request.query': {
      const q = r.url.indexOf('?')
      return q === -1 ? '' : r.url.slice(q + 1)
    }
    case 'request.host':
      return r.authority
    case 'request.scheme':
      return r.scheme
    case 'request.protocol':
      return r.protocol
    case 'request.id':
      return nonEmpty(r.requestId) ?? r.header('x-request-id')
    case 'request.useragent':
      return r.header('user-agent')
    case 'request.referer':
      return r.header('referer')
    case 'request.size':
      return r.requestBodyBytes
    case 'request.headers':
      return attribute.key === undefined ? undefined : r.header(attribute.key)
    case 'connection.requested_server_name':
      return r.requestedServerName ?? ''
    case 'xds.route_name':
      return nonEmpty(r.routeName)
    default:
      return undefined
  }
}

/** true, false, or undefined for a CEL evaluation error (a missing attribute). */
function evaluate(node: FilterNode, entry: Entry): boolean | undefined {
  switch (node.kind) {
    case 'literal':
      return node.value
    case 'and': {
      // CEL's commutative logic: false wins over an error, and an error over true.
      const left = evaluate(node.left, entry)
      if (left === false) return false
      const right = evaluate(node.right, entry)
      if (right === false) return false
      return left === undefined || right === undefined ? undefined : true
    }
    case 'or': {
      const left = evaluate(node.left, entry)
      if (left === true) return true
      const right = evaluate(node.right, entry)
      if (right === true) return true
      return left === undefined || right === undefined ? undefined : false
    }
    case 'not': {
      const value = evaluate(node.operand, entry)
      return value === undefined ? undefined : !value
    }
    case 'has':
      return attributeValue(entry, node.attribute) !== undefined
    case 'attribute': {
      const value = attributeValue(entry, node.attribute)
      return typeof value === 'boolean' ? value : undefined
    }
    case 'in': {
      const value = attributeValue(entry, node.attribute)
      return value === undefined ? undefined : node.values.includes(value)
    }
    case 'string': {
      const value = attributeValue(entry, node.attribute)
      if (typeof value !== 'string') return undefined
      if (node.fn === 'startsWith') return value.startsWith(node.value)
      if (node.fn === 'endsWith') return value.endsWith(node.value)
      return value.includes(node.value)
    }
    case 'compare': {
      const value = attributeValue(entry, node.attribute)
      if (value === undefined) return undefined
      switch (node.op) {
        case '==':
          return value === node.value
        case '!=':
          return value !== node.value
        case '<':
          return value < node.value
        case '<=':
          return value <= node.value
        case '>':
          return value > node.value
        case '>=':
          return value >= node.value
      }
    }
  }
}

/**
 * Whether the filter lets the entry be logged. As Envoy's CEL access-log filter, an expression whose
 * evaluation fails (an attribute the entry has not got, e.g. `response.code` of a TCP connection) does not.
 */
export function accessLogFilterAccepts(filter: AccessLogFilter, record: RequestRecord): boolean {
  return evaluate(filter.root, { http: record }) === true
}

/** The same for a TCP connection's entry. */
export function accessLogFilterAcceptsTcp(filter: AccessLogFilter, record: TcpRecord): boolean {
  return evaluate(filter.root, { tcp: record }) === true
}
