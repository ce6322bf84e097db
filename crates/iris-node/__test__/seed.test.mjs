// The Node examples of the project's spec (README), as written there.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'

import { until } from './helpers.mjs'

const require = createRequire(import.meta.url)
const { NodeRuntime } = require('../index.js')
const rt = new NodeRuntime()
after(() => rt.close())

test('push actors: 1000 workers with budget 50', async () => {
  const processed = []
  const fastWorker = (msg) => {
    // msg is a Buffer
    processed.push(`Processed: ${msg.toString()}`)
  }
  const pids = []
  for (let i = 0; i < 1000; i++) {
    pids.push(rt.spawn(fastWorker, 50))
  }
  pids.forEach((pid, i) => rt.send(pid, Buffer.from(`job ${i}`)))
  await until(() => processed.length === 1000)
  assert.ok(processed.includes('Processed: job 999'))
})

test('pull actors: the saga coordinator', async () => {
  const log = []
  const sagaCoordinator = async (mailbox) => {
    const msg = await mailbox.recv()
    log.push('Starting Saga...')

    // Wait up to 5 seconds
    const confirm = await mailbox.recv(5.0)
    if (confirm) {
      log.push('Confirmed')
    } else {
      log.push('Timed out')
    }
  }
  const pid = rt.spawnWithMailbox(sagaCoordinator, 100)
  rt.send(pid, Buffer.from('begin'))
  rt.send(pid, Buffer.from('confirm'))
  await rt.join(pid)
  assert.deepEqual(log, ['Starting Saga...', 'Confirmed'])
})

test('structured system messages from getMessages', async () => {
  const observerPid = rt.spawnObserved(10)
  rt.send(observerPid, Buffer.from('hello'))
  await until(() => rt.getMessages(observerPid).length === 1)
  const lines = []
  const messages = rt.getMessages(observerPid)
  messages.forEach((msg) => {
    if (msg.system) {
      if (msg.system.typeName === 'EXIT') {
        lines.push(`Actor ${msg.system.targetPid} has crashed!`)
      }
    } else {
      lines.push(`User Data: ${msg.data.toString()}`)
    }
  })
  assert.deepEqual(lines, ['User Data: hello'])
})

test('hot swapping logic', async () => {
  const printed = []
  const behaviorA = () => { printed.push('Logic A') }
  const behaviorB = () => { printed.push('Logic B (Upgraded!)') }
  const pid = rt.spawn(behaviorA, 10)
  rt.send(pid, Buffer.from('test'))
  await until(() => printed.length === 1)
  rt.hotSwap(pid, behaviorB)
  rt.send(pid, Buffer.from('test'))
  await until(() => printed.length === 2)
  assert.deepEqual(printed, ['Logic A', 'Logic B (Upgraded!)'])
})

test('structured concurrency: the child dies with its parent', async () => {
  const parent = rt.spawn((msg) => (msg.toString() === 'quit' ? NodeRuntime.STOP : undefined))
  const child = rt.spawnChild(parent, () => {})
  rt.send(parent, Buffer.from('quit'))
  await rt.join(child)
  assert.equal(rt.isAlive(child), false)
})

test('bounded mailboxes: spawnBounded', () => {
  const pid = rt.spawnBounded((m) => {}, 100, 2)
  assert.equal(typeof pid, 'number')
  rt.setOverflowPolicy(pid, 'dropold')
})
