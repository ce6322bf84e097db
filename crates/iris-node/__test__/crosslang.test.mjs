// Node <-> Python over the mesh: a Python node (crates/iris-py) echoes what this node sends.
// Skipped when no Python with the `iris` module is found (IRIS_PYTHON, the venv that
// `cargo xtask test-all` builds in target/venv, or python3 with crates/iris-py/python).
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'

import { iris, until } from './helpers.mjs'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const pyPath = `${root}crates/iris-py/python`

function findPython() {
  const candidates = [
    process.env.IRIS_PYTHON && [process.env.IRIS_PYTHON, {}],
    [`${root}target/venv/bin/python`, {}],
    ['python3', { PYTHONPATH: pyPath }],
  ].filter(Boolean)
  for (const [exe, env] of candidates) {
    if (exe.includes('/') && !existsSync(exe)) continue
    const probe = spawnSync(exe, ['-c', 'import iris'], { env: { ...process.env, ...env } })
    if (probe.status === 0) return [exe, env]
  }
  return null
}

const python = findPython()
process.env.IRIS_COOKIE = 'iris-crosslang-test-cookie'

const PY_NODE = `
import sys, iris
rt = iris.Runtime()
node_addr = sys.argv[1]
reply_to = rt.resolve_remote(node_addr, "node_inbox")
def echo(msg):
    rt.send(reply_to, b"echo:" + bytes(msg))
rt.register("py_echo", rt.spawn(echo))
print(rt.listen("127.0.0.1:0"), flush=True)
sys.stdin.read()
`

test('a Python node and this Node node message each other', { skip: !python && 'no Python with the iris module' }, async () => {
  const rt = new iris.NodeRuntime()
  after(() => rt.close())
  const addr = await rt.listen('127.0.0.1:0')
  const inbox = []
  rt.register('node_inbox', rt.spawn((m) => { inbox.push(m.toString()) }))

  const [exe, env] = python
  const py = spawn(exe, ['-c', PY_NODE, addr], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  after(() => py.stdin.end())
  const pyAddr = await new Promise((resolve, reject) => {
    createInterface({ input: py.stdout }).once('line', resolve)
    py.once('exit', (code) => reject(new Error(`python exited with ${code}`)))
  })
  assert.match(pyAddr, /^127\.0\.0\.1:\d+$/)
  assert.equal(await rt.isNodeUp(pyAddr), true)
  const echo = await rt.resolveRemote(pyAddr, 'py_echo')
  assert.equal(typeof echo, 'number')
  for (let i = 0; i < 10; i++) assert.equal(rt.send(echo, Buffer.from(`hello ${i}`)), true)
  await until(() => inbox.length === 10, 10_000, 'echoes from Python')
  assert.deepEqual(inbox, Array.from({ length: 10 }, (_, i) => `echo:hello ${i}`))
  py.stdin.end()
  assert.equal(await new Promise((r) => py.once('exit', r)), 0)
})
