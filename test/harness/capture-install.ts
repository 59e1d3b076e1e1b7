// Installs a test pod's capture with the real `outrigger capture install`, as the pod's init container runs it (root, before any container).

import { spawnSync } from 'node:child_process'
import { type Pod, PROXY_GID, PROXY_UID } from './netns.ts'
import { mainScript } from './proxy-process.ts'

/** The flags Istio's injector passes istio-iptables for a pod: the proxy's uid and gid, every inbound port but 15090 and 15021, all outbound. */
export const injectorCaptureFlags: readonly string[] = [
  '--proxy-uid',
  String(PROXY_UID),
  '--proxy-gid',
  String(PROXY_GID),
  '--inbound-ports',
  '*',
  '--exclude-inbound-ports',
  '15090,15021',
  '--outbound-ip-ranges',
  '*',
]

/** What `outrigger capture install` did. */
export interface CaptureRun {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs `outrigger capture install` with the injector's flags and `extraFlags` in the pod's namespace (never the host's). */
export function installCapture(pod: Pod, extraFlags: readonly string[] = []): CaptureRun {
  const run = spawnSync(
    'ip',
    [
      'netns',
      'exec',
      pod.namespace,
      process.execPath,
      mainScript,
      'capture',
      'install',
      ...injectorCaptureFlags,
      ...extraFlags,
    ],
    { encoding: 'utf8', timeout: 30_000 },
  )
  return { code: run.status, stdout: run.stdout, stderr: run.stderr }
}

/** installCapture, failing the test with the command's stderr when it does not exit 0. */
export function installCaptureOrFail(pod: Pod, extraFlags: readonly string[] = []): void {
  const ran = installCapture(pod, extraFlags)
  if (ran.code !== 0) throw new Error(`capture install in ${pod.name} exited ${ran.code}: ${ran.stderr}`)
}
