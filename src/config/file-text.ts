// A config file's text read again on demand, for source lines asked for after loading, if the file is unchanged.

import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'

/** A digest of `text`, to tell whether a file still holds what was loaded from it. */
export function fingerprintOf(text: string): string {
  return createHash('sha256').update(text).digest('base64')
}

/**
 * Returns a function giving `file`'s text while it still has `fingerprint`, else undefined. Loaded
 * resources keep this instead of the text: a big config's text (megabytes) is garbage once parsed,
 * and is read again only when a message needs the line of something inside a document.
 */
export function rereadIfUnchanged(file: string, fingerprint: string): () => string | undefined {
  return () => {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      return undefined
    }
    return fingerprintOf(text) === fingerprint ? text : undefined
  }
}
