import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

import { iris, until } from './helpers.mjs'

const { NodeRuntime } = iris
// Both nodes (and the child process) share the cookie.
process.env.IRIS_COOKIE = 'iris-node-test-cookie'
const a = new NodeRuntime()
const b = new NodeRuntime()
after(() => {
  a.close()
  b.close()
})

test('listen, resolveRemote, send to the proxy and sendRemote, isNodeUp', async () => {
  const addr = await b.listen('127.0.0.1:0')
  assert.match(addr, /^127\.0\.0\.1:\d+$/)
  assert.equal(b.listenAddr(), addr)
  const got = []
  const worker = b.spawn((m) => { got.push(m.toString()) })
  b.register('auth_worker', worker)

  assert.equal(await a.isNodeUp(addr), true)
  const proxy = await a.resolveRemote(addr, 'auth_worker')
  assert.equal(typeof proxy, 'number')
  assert.notEqual(proxy, worker)
  assert.equal(await a.resolveRemote(addr, 'nobody'), null)
  for (let i = 0; i < 100; i++) assert.equal(a.send(proxy, Buffer.from(`m${i}`)), true)
  assert.equal(a.sendRemote(addr, proxy, Buffer.from('login')), true)
  assert.equal(a.sendRemote(addr, worker, Buffer.from('by number')), true)
  await until(() => got.length === 102)
  // Through the proxy, in order; the send by number takes its own path.
  assert.deepEqual(got.filter((m) => m !== 'by number'), [...Array.from({ length: 100 }, (_, i) => `m${i}`), 'login'])
  assert.ok(got.includes('by number'))
})

test('monitorRemote: the proxy exits with the remote reason', async () => {
  const addr = b.listenAddr()
  const target = b.spawn(() => { throw new Error('remote failure') })
  const proxy = await a.monitorRemote(addr, target)
  const downs = []
  const watcher = a.spawn((m) => { if (m.system) downs.push(m.system) })
  a.monitor(watcher, proxy)
  b.send(target, Buffer.from('x'))
  const exit = await a.join(proxy)
  assert.equal(exit.reason, 'Crash')
  await until(() => downs.length === 1)
  assert.equal(downs[0].typeName, 'DOWN')
})

test('linkRemote: a remote crash kills the linked local actor', async () => {
  const addr = b.listenAddr()
  const target = b.spawn(() => { throw new Error('remote crash') })
  const local = a.spawn(() => {})
  const proxy = await a.linkRemote(local, addr, target)
  assert.equal(typeof proxy, 'number')
  b.send(target, Buffer.from('x'))
  assert.equal((await a.join(local)).reason, 'Killed')
})

test('errors: bind failure, unreachable nodes', async () => {
  await assert.rejects(a.listen('256.0.0.1:1'), { code: 'ERR_IRIS_BIND' })
  assert.equal(await a.isNodeUp('127.0.0.1:1', 200), false)
  await assert.rejects(a.resolveRemote('127.0.0.1:1', 'x'), (e) => e.code.startsWith('ERR_IRIS_'))
  assert.equal(a.sendRemote('127.0.0.1:1', 5, Buffer.from('x')), false)
  assert.equal(a.closeListener(), false)
})

test('across processes: another Node process resolves and messages this node', async () => {
  const addr = b.listenAddr()
  const got = []
  const echo = b.spawn((m) => { got.push(m.toString()) })
  b.register('echo', echo)
  const script = `
    const { NodeRuntime } = require(${JSON.stringify(fileURLToPath(new URL('../index.js', import.meta.url)))})
    const rt = new NodeRuntime()
    ;(async () => {
      const pid = await rt.resolveRemote(${JSON.stringify(addr)}, 'echo')
      rt.send(pid, Buffer.from('from another process'))
      await new Promise((r) => setTimeout(r, 200))
      rt.close()
    })()
  `
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'inherit', 'inherit'] })
  const code = await new Promise((r) => child.on('exit', r))
  assert.equal(code, 0)
  await until(() => got.length === 1)
  assert.deepEqual(got, ['from another process'])
})
