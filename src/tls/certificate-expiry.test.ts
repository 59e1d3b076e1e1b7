// Near expiry means under 1/5 of the lifetime left: past the renewal point of istio-agent, SPIRE and cert-manager.

import { describe, expect, it } from 'vitest'
import { expiryState, NEAR_EXPIRY_FRACTION } from './certificate-expiry.ts'

const HOUR = 3600_000

describe('expiryState', () => {
  const issued = Date.parse('2026-01-01T00:00:00Z')
  const day = { notBefore: new Date(issued), notAfter: new Date(issued + 24 * HOUR) }

  it('is valid until less than 1/5 of the lifetime is left, near-expiry after, expired from NotAfter on', () => {
    expect(NEAR_EXPIRY_FRACTION).toBe(0.2)
    expect(expiryState(day, issued)).toBe('valid')
    // istio-agent renews at half the lifetime, cert-manager with 1/3 left: both still 'valid'.
    expect(expiryState(day, issued + 12 * HOUR)).toBe('valid')
    expect(expiryState(day, issued + 16 * HOUR)).toBe('valid')
    expect(expiryState(day, issued + 24 * HOUR * 0.8)).toBe('valid')
    expect(expiryState(day, issued + 24 * HOUR * 0.8 + 1)).toBe('near-expiry')
    expect(expiryState(day, issued + 24 * HOUR - 1)).toBe('near-expiry')
    expect(expiryState(day, issued + 24 * HOUR)).toBe('expired')
  })
})
