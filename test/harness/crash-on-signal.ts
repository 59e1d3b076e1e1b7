// Preloaded into a proxy process by tests only (NODE_OPTIONS=--import): SIGUSR2 raises a fatal error in it.

/**
 * On SIGUSR2 the process throws from the signal handler (an uncaught exception), or with
 * OUTRIGGER_TEST_CRASH=rejection rejects a promise nobody handles. Workers of a supervisor inherit
 * NODE_OPTIONS, so a test picks the process it signals.
 */
process.on('SIGUSR2', () => {
  if (process.env.OUTRIGGER_TEST_CRASH === 'rejection') {
    void Promise.reject(new Error('test: rejected from a SIGUSR2 handler'))
    return
  }
  throw new Error('test: thrown from a SIGUSR2 handler')
})
