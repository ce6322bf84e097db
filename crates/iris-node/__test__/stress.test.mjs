import { test, after } from 'node:test'
import assert from 'node:assert/strict'

import { iris, until } from './helpers.mjs'

const { NodeRuntime } = iris
const rt = new NodeRuntime()
after(() => rt.close())

test('100,000 actors each handle one message', async () => {
  const n = 100_000
  let handled = 0
  const handler = () => { handled++ }
  const pids = []
  for (let i = 0; i < n; i++) pids.push(rt.spawn(handler))
  assert.equal(new Set(pids).size, n)
  const msg = Buffer.from('hi')
  for (const pid of pids) assert.equal(rt.send(pid, msg), true)
  await until(() => handled === n, 30_000, '100k handled messages')
  assert.equal(handled, n)
  for (const pid of pids) rt.stop(pid)
})

test('one actor handles 1,000,000 messages, in order', async () => {
  const n = 1_000_000
  let handled = 0
  let inOrder = true
  const pid = rt.spawn((msg) => {
    if (msg.readUInt32LE(0) !== handled) inOrder = false
    handled++
  })
  const msg = Buffer.alloc(4)
  for (let i = 0; i < n; i++) {
    msg.writeUInt32LE(i, 0)
    rt.send(pid, msg)
  }
  await until(() => handled === n, 30_000, '1M handled messages')
  assert.equal(handled, n)
  assert.equal(inOrder, true)
  rt.stop(pid)
})
