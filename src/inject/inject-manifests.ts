// `outrigger inject` on a text: every pod of a multi-document manifest stream injected, other documents printed as they were, problems as `file:line` messages.

import { stringify } from 'yaml'
import type { ConfigMessage } from '../config/messages.ts'
import { parseYamlDocuments } from '../config/yaml-document.ts'
import { type InjectOptions, injectPod } from './inject-pod.ts'
import { formatPath, isObject, ManifestShapeError } from './manifest-values.ts'
import { podTemplatesOf } from './pod-templates.ts'

export interface InjectResult {
  /** The manifests with the sidecar added; undefined when an error was found (nothing is half-injected). */
  readonly output: string | undefined
  /** Errors, and a warning for each pod left as it was, with the reason. */
  readonly messages: ConfigMessage[]
}

/** A document of the stream: its text (from its `---` line, if any) and its first line in the file. */
interface Segment {
  readonly text: string
  readonly line: number
  /** `---\n` when a marker line opens it, '' for a first document without one. */
  readonly marker: string
}

/**
 * Injects each Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job and
 * CronJob (also inside a List) of `text`, as istioctl kube-inject does. A document that is not
 * injected keeps its exact text; an injected one is printed again from its values (its comments are lost).
 */
export function injectManifests(text: string, file: string, options: InjectOptions): InjectResult {
  const messages: ConfigMessage[] = []
  const parsed = parseYamlDocuments(text)
  for (const m of parsed.messages)
    messages.push({ severity: m.severity, file, line: m.line, message: m.message })
  if (messages.some((m) => m.severity === 'error')) return { output: undefined, messages }

  let output = ''
  for (const segment of segmentsOf(text)) {
    const [document] = parseYamlDocuments(segment.text).documents
    const value = document?.value
    if (document === undefined || !isObject(value)) {
      output += segment.text
      continue
    }
    const lineOf = (path: readonly (string | number)[]) => segment.line - 1 + document.lineOf(path)
    let injected = false
    try {
      for (const template of podTemplatesOf(value)) {
        const outcome = injectPod(template, options)
        if (outcome.injected) injected = true
        else {
          const { kind, name } = template.owner
          messages.push({
            severity: 'warning',
            file,
            line: lineOf(template.path),
            message: `${kind} ${name}${template.path.length > 0 ? ` (${formatPath(template.path)})` : ''}: not injected: it ${outcome.reason}`,
          })
        }
      }
    } catch (error) {
      if (!(error instanceof ManifestShapeError)) throw error
      messages.push({ severity: 'error', file, line: lineOf(error.path), message: error.message })
      continue
    }
    output += injected
      ? segment.marker + stringify(value, { lineWidth: 0, indentSeq: false, aliasDuplicateObjects: false })
      : segment.text
  }
  if (messages.some((m) => m.severity === 'error')) return { output: undefined, messages }
  return { output, messages }
}

/** The stream cut at each `---` line (a document marker at column 0 cannot be inside a document's content). */
function segmentsOf(text: string): Segment[] {
  const segments: Segment[] = []
  let start = 0
  let startLine = 1
  let marker = ''
  let offset = 0
  let line = 1
  while (offset < text.length) {
    const newline = text.indexOf('\n', offset)
    const end = newline === -1 ? text.length : newline + 1
    if (/^---(?:[ \t\r\n]|$)/.test(text.slice(offset, end))) {
      if (offset > start) segments.push({ text: text.slice(start, offset), line: startLine, marker })
      start = offset
      startLine = line
      marker = '---\n'
    }
    offset = end
    line++
  }
  if (text.length > start) segments.push({ text: text.slice(start), line: startLine, marker })
  return segments
}
