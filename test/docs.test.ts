// The documentation stays navigable and complete: links resolve, the set-up commands exist, every bootstrap key and kind is documented.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { bootstrapSchema } from '../src/bootstrap/schema.ts'
import { KNOWN_KINDS } from '../src/config/kinds.ts'

const root = resolve(import.meta.dirname, '..')
const read = (path: string): string => readFileSync(join(root, path), 'utf8')

/** The Markdown pages a reader navigates: the README, docs/ and the benchmark suite's README. */
const pages = [
  'README.md',
  'bench/README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
]

/** Written on a parallel branch of the same issue; linked before it lands. */
const landingSeparately = new Set(['docs/ARCHITECTURE.md'])

/** GitHub's heading anchors: lowercase, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>()
  const seen = new Map<string, number>()
  for (const line of withoutCodeBlocks(markdown).split('\n')) {
    const heading = /^#{1,6}\s+(.*)$/.exec(line)
    if (heading === null) continue
    const slug = heading[1]
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\- _]/gu, '')
      .replace(/ /g, '-')
    const count = seen.get(slug) ?? 0
    seen.set(slug, count + 1)
    anchors.add(count === 0 ? slug : `${slug}-${count}`)
  }
  return anchors
}

function withoutCodeBlocks(markdown: string): string {
  return markdown.replace(/```[\s\S]*?```/g, '')
}

/** Relative link targets of a page (`[text](target)`), outside code blocks. */
function relativeLinks(markdown: string): string[] {
  const links: string[] = []
  for (const match of withoutCodeBlocks(markdown).matchAll(/\]\(([^)\s]+)\)/g)) {
    if (!/^[a-z]+:/i.test(match[1])) links.push(match[1])
  }
  return links
}

describe('documentation links', () => {
  for (const page of pages) {
    it(`every relative link and anchor in ${page} resolves`, () => {
      const broken: string[] = []
      for (const link of relativeLinks(read(page))) {
        const [path, anchor] = link.split('#')
        const target = path === '' ? page : relative(root, resolve(root, dirname(page), path))
        if (!existsSync(join(root, target))) {
          if (!landingSeparately.has(target)) broken.push(`${link} (no ${target})`)
          continue
        }
        if (anchor === undefined) continue
        if (statSync(join(root, target)).isDirectory() || !anchorsOf(read(target)).has(anchor))
          broken.push(`${link} (no heading #${anchor} in ${target})`)
      }
      expect(broken).toEqual([])
    })
  }
})

describe('README set-up commands', () => {
  it('shows the two set-up commands, and package.json has the scripts they run', () => {
    const readme = read('README.md')
    expect(readme).toContain('npm ci && npm start')
    expect(readme).toContain('npm ci && npm test')
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts
    expect(Object.keys(scripts)).toEqual(expect.arrayContaining(['start', 'test']))
  })
})

describe('reference completeness', () => {
  it('docs/configuration.md names every bootstrap key (src/bootstrap/schema.ts)', () => {
    const page = read('docs/configuration.md')
    const defaults = bootstrapSchema.parse({})
    const keys = [
      ...Object.keys(bootstrapSchema.shape),
      ...Object.keys(defaults.node).map((key) => `node.${key}`),
      ...Object.keys(defaults.listeners).map((key) => `listeners.${key}`),
    ]
    const missing = keys.filter((key) => !page.includes(`\`${key}`))
    expect(missing).toEqual([])
  })

  it('docs/istio-resources.md names every kind Outrigger reads or accepts (src/config/kinds.ts)', () => {
    const page = read('docs/istio-resources.md')
    expect(KNOWN_KINDS.filter((kind) => !page.includes(kind))).toEqual([])
  })
})
