#!/usr/bin/env node
// The `outrigger` command: runs the compiled dist/main.js (`npm run build`), or src/main.ts on Node 24 when not built.
import { existsSync } from 'node:fs'

const built = new URL('../dist/main.js', import.meta.url)
await import(existsSync(built) ? built.href : new URL('../src/main.ts', import.meta.url).href)
