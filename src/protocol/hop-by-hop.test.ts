import { describe, expect, it } from 'vitest'
import { connectionTokens, isHopByHop } from './hop-by-hop.ts'

describe('isHopByHop', () => {
  it('knows every hop-by-hop name and nothing else', () => {
    const hop = [
      'connection',
      'keep-alive',
      'proxy-connection',
      'proxy-authenticate',
      'proxy-authorization',
      'transfer-encoding',
      'upgrade',
      'te',
      'trailer',
      'expect',
      'http2-settings',
    ]
    for (const name of hop) expect(isHopByHop(name), name).toBe(true)
    const kept = [
      'host',
      'content-type',
      'content-length',
      'trailers',
      'tk',
      'x-upgrade',
      'expects',
      'cookie',
      '',
    ]
    for (const name of kept) expect(isHopByHop(name), name).toBe(false)
  })
})

describe('connectionTokens', () => {
  it('finds the extra names a Connection header lists, and none in the usual values', () => {
    expect(connectionTokens('keep-alive')).toBeUndefined()
    expect(connectionTokens('close')).toBeUndefined()
    expect(connectionTokens(undefined)).toBeUndefined()
    expect([...(connectionTokens('Keep-Alive, X-Hop ,x-other') ?? [])]).toEqual(['x-hop', 'x-other'])
  })
})
