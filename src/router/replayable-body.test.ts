import { PassThrough, Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { BodySupersededError, ReplayableBody } from './replayable-body.ts'

const text = (r: IteratorResult<Buffer>): string | undefined => (r.done ? undefined : r.value.toString())

async function readAll(body: AsyncIterable<Buffer>): Promise<string> {
  const parts: Buffer[] = []
  for await (const chunk of body) parts.push(chunk)
  return Buffer.concat(parts).toString()
}

describe('ReplayableBody', () => {
  it('replays the whole body from the start to each new try', async () => {
    const source = new PassThrough()
    const ended: string[] = []
    const body = new ReplayableBody(source, 1024, (b) => ended.push(String(b.whole)))
    const first = body.iterable()
    source.write('hello ')
    expect(text(await first.next())).toBe('hello ')
    source.end('world')
    expect(text(await first.next())).toBe('world')
    expect((await first.next()).done).toBe(true)
    expect(ended).toEqual(['hello world'])
    expect(body.whole?.toString()).toBe('hello world')
    expect(await readAll(body.iterable())).toBe('hello world')
    expect(await readAll(body.iterable())).toBe('hello world')
  })

  it('continues a replay with the live body after a partial read', async () => {
    const source = new PassThrough()
    const body = new ReplayableBody(source, 1024)
    const first = body.iterable()
    source.write('a')
    expect(text(await first.next())).toBe('a')
    const second = body.iterable()
    expect(text(await second.next())).toBe('a')
    const pending = second.next()
    source.write('b')
    expect(text(await pending)).toBe('b')
    source.end()
    expect((await second.next()).done).toBe(true)
    // The given-up try's reader is superseded, not silently ended (a truncated body must not look whole).
    await expect(first.next()).rejects.toBeInstanceOf(BodySupersededError)
    expect(await readAll(body.iterable())).toBe('ab')
  })

  it('drops the copy past the bound while the current try keeps streaming', async () => {
    const source = new PassThrough()
    let ended = 0
    const body = new ReplayableBody(source, 10, () => ended++)
    const only = body.iterable()
    source.write('123456')
    expect(text(await only.next())).toBe('123456')
    expect(body.replayable).toBe(true)
    source.write('abcdef')
    expect(text(await only.next())).toBe('abcdef')
    expect(body.replayable).toBe(false)
    expect(() => body.iterable()).toThrow(/no longer replayable/)
    source.end('tail')
    expect(text(await only.next())).toBe('tail')
    expect((await only.next()).done).toBe(true)
    expect(body.whole).toBeUndefined()
    expect(ended).toBe(0)
  })

  it('reads the source only as fast as the current try asks (back-pressure)', async () => {
    let produced = 0
    const source = new Readable({
      highWaterMark: 1,
      read() {
        produced++
        this.push(Buffer.alloc(1000, 'x'))
      },
    })
    const body = new ReplayableBody(source, 1 << 20)
    const it = body.iterable()
    await it.next()
    await it.next()
    await sleep(30)
    const afterTwo = produced
    expect(afterTwo).toBeLessThanOrEqual(4)
    await sleep(30)
    expect(produced).toBe(afterTwo)
    await it.next()
    expect(produced).toBeLessThanOrEqual(afterTwo + 2)
  })

  it('keeps a chunk read for a given-up try for the next one', async () => {
    const source = new PassThrough()
    const body = new ReplayableBody(source, 1024)
    const first = body.iterable()
    const abandoned = first.next()
    // A retry starts while the first try still waits for the body; the chunk then arrives.
    const second = body.iterable()
    source.write('x')
    await expect(abandoned).rejects.toBeInstanceOf(BodySupersededError)
    expect(text(await second.next())).toBe('x')
    source.end('y')
    expect(await readAll(second)).toBe('y')
    expect(await readAll(body.iterable())).toBe('xy')
  })

  it('shares one pending read between a given-up try and its retry', async () => {
    const source = new PassThrough()
    const body = new ReplayableBody(source, 1024)
    const first = body.iterable()
    const abandoned = first.next()
    const second = body.iterable()
    const waiting = second.next()
    source.write('z')
    expect(text(await waiting)).toBe('z')
    await expect(abandoned).rejects.toBeInstanceOf(BodySupersededError)
    source.end()
    expect((await second.next()).done).toBe(true)
    expect(body.whole?.toString()).toBe('z')
  })

  it('a read pending for a given-up try that overflows the bound ends replaying', async () => {
    const source = new PassThrough()
    const body = new ReplayableBody(source, 4)
    const first = body.iterable()
    source.write('abc')
    expect(text(await first.next())).toBe('abc')
    // The try is given up (a retry waits out its backoff) while its read is pending; the read completes.
    const abandoned = first.next()
    source.write('defg')
    expect(text(await abandoned)).toBe('defg')
    expect(body.replayable).toBe(false)
    expect(() => body.iterable()).toThrow(/no longer replayable/)
  })

  it('passes a source error to the try reading it', async () => {
    const source = new PassThrough()
    const body = new ReplayableBody(source, 1024)
    const it = body.iterable()
    const pending = it.next()
    source.destroy(new Error('client went away'))
    await expect(pending).rejects.toThrow('client went away')
    expect(body.failed).toBe(true)
    await expect(body.iterable().next()).rejects.toThrow('client went away')
  })

  it('stops replaying once released, without cutting the current try short', async () => {
    const source = new PassThrough()
    const body = new ReplayableBody(source, 1024)
    const it = body.iterable()
    source.write('a')
    expect(text(await it.next())).toBe('a')
    body.release()
    expect(body.replayable).toBe(false)
    source.end('b')
    expect(await readAll(it)).toBe('b')
  })

  it('leaves the source open when a try returns early', async () => {
    const source = new PassThrough()
    const body = new ReplayableBody(source, 1024)
    const it = body.iterable()
    source.write('a')
    for await (const chunk of it) {
      expect(chunk.toString()).toBe('a')
      break
    }
    expect(source.destroyed).toBe(false)
    source.end('b')
    expect(await readAll(body.iterable())).toBe('ab')
  })
})
