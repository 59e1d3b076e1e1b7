#!/usr/bin/env node
// The `outrigger` command: runs src/main.ts on Node 24, which strips TypeScript types at load.
import '../src/main.ts'
