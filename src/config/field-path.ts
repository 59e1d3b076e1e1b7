// How a path into a config document is written in messages: `spec.http[0].match[0].headers["x-user"]`.

import type { SpecPath } from './resource.ts'

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/

export function formatFieldPath(path: SpecPath): string {
  let text = ''
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`
    else if (PLAIN_KEY.test(segment)) text += text === '' ? segment : `.${segment}`
    else text += `[${JSON.stringify(segment)}]`
  }
  return text
}
