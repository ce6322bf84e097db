// The committed index.d.ts must be what the build generates (`npm run build` writes
// .build/index.d.ts; `npm run types` copies it over index.d.ts).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'

const read = (rel) => readFileSync(new URL(rel, import.meta.url), 'utf8')

test('index.d.ts matches the generated type definitions', () => {
  const generated = read('../.build/index.d.ts')
  assert.ok(generated.includes('export declare class NodeRuntime'), 'the build generated no types')
  assert.equal(read('../index.d.ts'), generated, 'index.d.ts is stale: run `npm run build && npm run types`')
})
