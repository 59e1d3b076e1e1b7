import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { KubeletVolume } from '../../test/harness/kubelet-volume.ts'
import { FileWatcher } from './file-watcher.ts'

const debounceMs = 20

/** A FileWatcher whose calls are counted, and a way to wait for the next one. */
function countingWatcher(): { watcher: FileWatcher; calls: () => number; next: () => Promise<void> } {
  let calls = 0
  let wake: (() => void) | undefined
  const watcher = new FileWatcher(() => {
    calls++
    wake?.()
  }, debounceMs)
  const next = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no change noticed within 5 s')), 5_000)
      wake = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  return { watcher, calls: () => calls, next }
}

const quiet = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, debounceMs * 10))

describe('FileWatcher', () => {
  let dir: string
  let watcher: FileWatcher | undefined
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'outrigger-watch-'))
  })
  afterEach(async () => {
    watcher?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('notices a file in a kubelet ConfigMap volume changing through the `..data` swap (atomic_writer.go)', async () => {
    const volume = await KubeletVolume.create(dir, { 'vs.yaml': 'v1', 'other.yaml': 'x' })
    const counted = countingWatcher()
    watcher = counted.watcher
    watcher.watch([volume.path('vs.yaml')])
    const changed = counted.next()
    await volume.update({ 'vs.yaml': 'v2', 'other.yaml': 'x' })
    await changed
    expect(await readFile(volume.path('vs.yaml'), 'utf8')).toBe('v2')
  })

  it('notices a change in a directory that is a kubelet volume', async () => {
    const volume = await KubeletVolume.create(dir, { 'a.yaml': '1' })
    const counted = countingWatcher()
    watcher = counted.watcher
    watcher.watch([dir])
    const changed = counted.next()
    await volume.update({ 'a.yaml': '2', 'b.yaml': '3' })
    await changed
  })

  it('notices a file replaced by a rename, as editors and mv do', async () => {
    const file = join(dir, 'cert.pem')
    await writeFile(file, 'one')
    const counted = countingWatcher()
    watcher = counted.watcher
    watcher.watch([file])
    const changed = counted.next()
    await writeFile(join(dir, 'cert.pem.new'), 'two')
    await rename(join(dir, 'cert.pem.new'), file)
    await changed
  })

  it('ignores other files in a watched file’s directory, and calls back no more once closed', async () => {
    const file = join(dir, 'key.pem')
    await writeFile(file, 'one')
    const counted = countingWatcher()
    watcher = counted.watcher
    watcher.watch([file])
    await writeFile(join(dir, 'unrelated.txt'), 'noise')
    await mkdir(join(dir, 'sub'))
    await quiet()
    expect(counted.calls()).toBe(0)

    const changed = counted.next()
    await writeFile(file, 'two')
    await changed
    expect(counted.calls()).toBe(1)

    watcher.close()
    await writeFile(file, 'three')
    await quiet()
    expect(counted.calls()).toBe(1)
  })
})
