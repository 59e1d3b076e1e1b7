// The rule builder per flag: expected rules written out from istio-iptables' run.go for each setting.

import { describe, expect, it } from 'vitest'
import { parseCaptureArgs } from './capture-config.ts'
import { buildCaptureRules, type CaptureHost, type Rule } from './capture-rules.ts'
import { restoreBatch } from './restore-batch.ts'

const noDns: CaptureHost = { ipv6: false, dnsServersV4: [], dnsServersV6: [] }

function lines(rules: readonly Rule[], table = 'nat'): string[] {
  return restoreBatch(new Map(), rules)
    .split('\n')
    .reduce<{ table: string; out: string[] }>(
      (acc, line) => {
        if (line.startsWith('*')) acc.table = line.slice(1)
        else if (acc.table === table && (line.startsWith('-A') || line.startsWith('-I'))) acc.out.push(line)
        return acc
      },
      { table: '', out: [] },
    ).out
}

function build(flags: string, host: CaptureHost = noDns) {
  return buildCaptureRules(parseCaptureArgs(flags.split(' ').filter(Boolean)), host)
}

const TAG = '-m comment --comment outrigger-capture'

describe('capture rules (REDIRECT)', () => {
  it('the injector line: all inbound but the excluded ports, all outbound, uid and gid 1337 excluded', () => {
    const rules = build(
      '--proxy-uid 1337 --proxy-gid 1337 --inbound-ports * --exclude-inbound-ports 15090,15021,15020 --outbound-ip-ranges * --mode redirect',
    )
    expect(lines(rules.v4)).toEqual([
      '-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN',
      '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
      '-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
      `-A PREROUTING -p tcp ${TAG} -j ISTIO_INBOUND`,
      '-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN',
      '-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN',
      '-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN',
      '-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT',
      `-A OUTPUT ${TAG} -j ISTIO_OUTPUT`,
      '-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN',
      '-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN',
      '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
      '-A ISTIO_OUTPUT -j ISTIO_REDIRECT',
    ])
    expect(rules.v6).toEqual([])
    expect(restoreBatch(new Map(), rules.v4)).not.toContain('*mangle')
  })

  it('IPv6 gets the same rules with ::6 and ::1 when it is on', () => {
    const rules = build('-u 1337 -b * -i *', { ...noDns, ipv6: true })
    const v6 = lines(rules.v6)
    expect(v6).toContain('-A ISTIO_OUTPUT -o lo -s ::6/128 -j RETURN')
    expect(v6).toContain(
      '-A ISTIO_OUTPUT -o lo ! -d ::1/128 -p tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT',
    )
    expect(v6).toContain('-A ISTIO_OUTPUT -d ::1/128 -j RETURN')
    expect(v6.join('\n')).not.toContain('127.0.0')
    expect(v6.length).toBe(lines(rules.v4).length)
  })

  it('listed inbound ports are captured one by one, and an empty list captures no inbound', () => {
    expect(lines(build('-b 9080,9443').v4).filter((l) => l.includes('ISTIO_INBOUND'))).toEqual([
      '-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN',
      `-A PREROUTING -p tcp ${TAG} -j ISTIO_INBOUND`,
      '-A ISTIO_INBOUND -p tcp --dport 9080 -j ISTIO_IN_REDIRECT',
      '-A ISTIO_INBOUND -p tcp --dport 9443 -j ISTIO_IN_REDIRECT',
    ])
    const none = buildCaptureRules(parseCaptureArgs(['-b', '', '-i', '*']), noDns)
    expect(lines(none.v4).some((l) => l.startsWith('-A PREROUTING'))).toBe(false)
  })

  it('outbound CIDRs: excluded ones return before the included ones redirect, per family', () => {
    const rules = build('-i 10.0.0.0/8,fd00::/8 -x 10.1.0.0/16,fd00:1::/32', { ...noDns, ipv6: true })
    expect(lines(rules.v4).slice(-3)).toEqual([
      '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
      '-A ISTIO_OUTPUT -d 10.1.0.0/16 -j RETURN',
      '-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT',
    ])
    expect(lines(rules.v6).slice(-3)).toEqual([
      '-A ISTIO_OUTPUT -d ::1/128 -j RETURN',
      '-A ISTIO_OUTPUT -d fd00:1::/32 -j RETURN',
      '-A ISTIO_OUTPUT -d fd00::/8 -j ISTIO_REDIRECT',
    ])
  })

  it('an included loopback range keeps the app’s loopback traffic capturable (no `-o lo ! --uid-owner` RETURN)', () => {
    const all = lines(build('-i 127.1.2.3/32').v4)
    expect(all.some((l) => l.includes('-o lo -m owner ! --uid-owner'))).toBe(false)
    expect(all).toContain('-A ISTIO_OUTPUT -d 127.1.2.3/32 -j ISTIO_REDIRECT')
  })

  it('outbound ports: excluded for TCP and UDP first, included ports redirect whatever the address', () => {
    const all = lines(build('-i 10.0.0.0/8 -o 3306,5432 -q 8080').v4)
    expect(
      all.slice(
        all.indexOf(`-A OUTPUT ${TAG} -j ISTIO_OUTPUT`) + 1,
        all.indexOf(`-A OUTPUT ${TAG} -j ISTIO_OUTPUT`) + 6,
      ),
    ).toEqual([
      '-A ISTIO_OUTPUT -p tcp --dport 3306 -j RETURN',
      '-A ISTIO_OUTPUT -p udp --dport 3306 -j RETURN',
      '-A ISTIO_OUTPUT -p tcp --dport 5432 -j RETURN',
      '-A ISTIO_OUTPUT -p udp --dport 5432 -j RETURN',
      '-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN',
    ])
    expect(all.slice(-2)).toEqual([
      '-A ISTIO_OUTPUT -p tcp --dport 8080 -j ISTIO_REDIRECT',
      '-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT',
    ])
  })

  it('other proxy ports and several uids and gids, each excluded', () => {
    const all = lines(build('-p 16001 -z 16006 -u 3,4 -g 1 -i *').v4)
    expect(all).toContain('-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 16001')
    expect(all).toContain('-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 16006')
    for (const id of ['--uid-owner 3', '--uid-owner 4', '--gid-owner 1']) {
      expect(all).toContain(`-A ISTIO_OUTPUT -m owner ${id} -j RETURN`)
    }
    expect(all.some((l) => l.includes('--gid-owner 3'))).toBe(false)
  })

  it('excluded interfaces return first in PREROUTING and OUTPUT', () => {
    expect(lines(build('-c eth1 -i *').v4).slice(0, 2)).toEqual([
      `-A PREROUTING -i eth1 ${TAG} -j RETURN`,
      `-A OUTPUT -o eth1 ${TAG} -j RETURN`,
    ])
  })

  it('--drop-invalid drops conntrack INVALID packets in mangle', () => {
    expect(lines(build('--drop-invalid').v4, 'mangle')).toEqual([
      `-A PREROUTING -m conntrack --ctstate INVALID ${TAG} -j ISTIO_DROP`,
      '-A ISTIO_DROP -j DROP',
    ])
  })
})

describe('capture rules (DNS)', () => {
  const host: CaptureHost = { ipv6: true, dnsServersV4: ['10.96.0.10'], dnsServersV6: ['fd00::a'] }

  it('--redirect-dns sends port 53 to resolv.conf’s servers to 15053, after the proxy’s own traffic returned', () => {
    const rules = build('-u 1337 -i * --redirect-dns', host)
    const nat = lines(rules.v4)
    expect(nat).toContain(
      '-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp -m multiport ! --dports 53,15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT',
    )
    expect(nat).toContain('-A ISTIO_OUTPUT -o lo -p tcp ! --dport 53 -m owner ! --uid-owner 1337 -j RETURN')
    const jump = nat.indexOf('-A ISTIO_OUTPUT -j ISTIO_OUTPUT_DNS')
    expect(jump).toBeGreaterThan(nat.indexOf('-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN'))
    expect(nat.slice(jump + 1, jump + 3)).toEqual([
      '-A ISTIO_OUTPUT_DNS -p tcp --dport 53 -d 10.96.0.10/32 -j REDIRECT --to-ports 15053',
      '-A ISTIO_OUTPUT_DNS -p udp --dport 53 -d 10.96.0.10/32 -j REDIRECT --to-port 15053',
    ])
    expect(lines(rules.v4, 'raw')).toEqual([
      `-A OUTPUT ${TAG} -j ISTIO_OUTPUT_DNS`,
      '-A ISTIO_OUTPUT_DNS -p udp --dport 53 -m owner --uid-owner 1337 -j CT --zone 1',
      '-A ISTIO_OUTPUT_DNS -p udp --sport 15053 -m owner --uid-owner 1337 -j CT --zone 2',
      '-A ISTIO_OUTPUT_DNS -p udp --dport 53 -m owner --gid-owner 1337 -j CT --zone 1',
      '-A ISTIO_OUTPUT_DNS -p udp --sport 15053 -m owner --gid-owner 1337 -j CT --zone 2',
      `-A PREROUTING ${TAG} -j ISTIO_INBOUND`,
      '-A ISTIO_OUTPUT_DNS -p udp --dport 53 -d 10.96.0.10/32 -j CT --zone 2',
      '-A ISTIO_INBOUND -p udp --sport 53 -s 10.96.0.10/32 -j CT --zone 1',
    ])
    expect(lines(rules.v6)).toContain(
      '-A ISTIO_OUTPUT_DNS -p udp --dport 53 -d fd00::a/128 -j REDIRECT --to-port 15053',
    )
  })

  it('--capture-all-dns redirects every port-53 query, whatever the server', () => {
    const nat = lines(build('-i * --redirect-dns --capture-all-dns', noDns).v4)
    expect(nat).toContain('-A ISTIO_OUTPUT_DNS -p tcp --dport 53 -j REDIRECT --to-ports 15053')
    expect(nat).toContain('-A ISTIO_OUTPUT_DNS -p udp --dport 53 -j REDIRECT --to-port 15053')
  })

  it('--redirect-dns with no nameserver and without --capture-all-dns captures no DNS, as Istio', () => {
    const rules = build('-i * --redirect-dns', noDns)
    expect(restoreBatch(new Map(), rules.v4)).not.toContain('ISTIO_OUTPUT_DNS')
  })
})

describe('capture rules (TPROXY)', () => {
  it('inbound goes through mangle: divert, TPROXY to 15006 with the mark, and the proxy’s marks', () => {
    const rules = build('-u 1337 -g 1337 -m TPROXY -b * -d 15090 -i *', { ...noDns, ipv6: true })
    expect(lines(rules.v4, 'mangle')).toEqual([
      '-A ISTIO_DIVERT -j MARK --set-mark 1337',
      '-A ISTIO_DIVERT -j ACCEPT',
      '-A ISTIO_TPROXY ! -d 127.0.0.1/32 -p tcp -j TPROXY --tproxy-mark 1337/0xffffffff --on-port 15006',
      `-A PREROUTING -p tcp ${TAG} -j ISTIO_INBOUND`,
      '-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN',
      '-A ISTIO_INBOUND -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j ISTIO_DIVERT',
      '-A ISTIO_INBOUND -p tcp -j ISTIO_TPROXY',
      `-A PREROUTING -p tcp -m mark --mark 1337 ${TAG} -j CONNMARK --save-mark`,
      `-A OUTPUT -p tcp -o lo -m mark --mark 1337 ${TAG} -j RETURN`,
      `-A OUTPUT ! -d 127.0.0.1/32 -p tcp -o lo -m owner --uid-owner 1337 ${TAG} -j MARK --set-mark 1338`,
      `-A OUTPUT ! -d 127.0.0.1/32 -p tcp -o lo -m owner --gid-owner 1337 ${TAG} -j MARK --set-mark 1338`,
      `-A OUTPUT -p tcp -m connmark --mark 1337 ${TAG} -j CONNMARK --restore-mark`,
      '-I ISTIO_INBOUND 1 -p tcp -m mark --mark 1337 -j RETURN',
      '-I ISTIO_INBOUND 2 -p tcp -s 127.0.0.6/32 -i lo -j RETURN',
      '-I ISTIO_INBOUND 3 -p tcp -i lo -m mark ! --mark 1338 -j RETURN',
    ])
    expect(lines(rules.v6, 'mangle')).toContain('-I ISTIO_INBOUND 2 -p tcp -s ::6/128 -i lo -j RETURN')
    expect(lines(rules.v6, 'mangle')).toContain(
      '-A ISTIO_TPROXY ! -d ::1/128 -p tcp -j TPROXY --tproxy-mark 1337/0xffffffff --on-port 15006',
    )
    // Outbound stays REDIRECT in nat, and no inbound rule is left in nat.
    expect(lines(rules.v4)).toContain('-A ISTIO_OUTPUT -j ISTIO_REDIRECT')
    expect(lines(rules.v4).some((l) => l.startsWith('-A PREROUTING'))).toBe(false)
  })

  it('listed inbound ports divert and TPROXY port by port; another mark is used throughout', () => {
    const mangle = lines(build('--mode tproxy -t 77 -b 9080').v4, 'mangle')
    expect(mangle).toContain(
      '-A ISTIO_INBOUND -p tcp --dport 9080 -m conntrack --ctstate RELATED,ESTABLISHED -j ISTIO_DIVERT',
    )
    expect(mangle).toContain('-A ISTIO_INBOUND -p tcp --dport 9080 -j ISTIO_TPROXY')
    expect(mangle).toContain('-A ISTIO_DIVERT -j MARK --set-mark 77')
    expect(mangle).toContain('-I ISTIO_INBOUND 1 -p tcp -m mark --mark 77 -j RETURN')
  })
})

describe('capture flags', () => {
  it('DESIGN §3 names and istio-iptables names mean the same', () => {
    const design = parseCaptureArgs(
      '--proxy-uid 7 --inbound-ports 80 --exclude-inbound-ports 81 --outbound-ip-ranges 10.0.0.0/8 --exclude-outbound-ip-ranges 10.1.0.0/16 --exclude-outbound-ports 22 --outbound-ports 8080 --mode tproxy'.split(
        ' ',
      ),
    )
    const istio = parseCaptureArgs(
      '-u 7 -b 80 -d 81 -i 10.0.0.0/8 -x 10.1.0.0/16 -o 22 -q 8080 -m TPROXY'.split(' '),
    )
    expect(design).toEqual(istio)
    expect(istio.proxyGids).toEqual(['7'])
  })

  it('refuses bad values with the flag named', () => {
    expect(() => parseCaptureArgs(['--mode', 'nat'])).toThrow(/--mode nat/)
    expect(() => parseCaptureArgs(['-b', '80,99999'])).toThrow(/not a port/)
    expect(() => parseCaptureArgs(['-i', '10.0.0.0'])).toThrow(/not a CIDR/)
    expect(() => parseCaptureArgs(['-x', '*'])).toThrow(/cannot be \*/)
    expect(() => parseCaptureArgs(['-u', 'istio'])).toThrow(/numeric/)
    expect(() => parseCaptureArgs(['--no-such-flag'])).toThrow(/no-such-flag/)
  })
})
