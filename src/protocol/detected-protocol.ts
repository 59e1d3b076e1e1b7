// What a connection's first bytes showed it to speak: read by protocol detection, kept on a TCP connection's context.

export type DetectedProtocol = 'tls' | 'http2' | 'http1' | 'tcp'
