// Push messages reach JS in chunks (one `deliver` call runs many handlers): what a single
// message per call guaranteed must still hold inside a chunk and across chunks.
import { test, describe, after } from 'node:test'
import assert from 'node:assert/strict'

import { iris, until } from './helpers.mjs'

const { NodeRuntime } = iris
const rt = new NodeRuntime()
after(() => rt.close())

const num = (i) => {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(i, 0)
  return b
}

describe('chunked delivery', () => {
  test('many actors, interleaved, each strictly in order across chunks', async () => {
    const actors = 40
    const each = 300 // 12,000 messages: many chunks of up to 512
    const got = Array.from({ length: actors }, () => [])
    const pids = got.map((seen) => rt.spawn((m) => { seen.push(m.readUInt32LE(0)) }))
    for (let i = 0; i < each; i++) for (const pid of pids) rt.send(pid, num(i))
    await until(() => got.every((g) => g.length === each), 20_000, 'every message handled')
    const want = Array.from({ length: each }, (_, i) => i)
    for (const g of got) assert.deepEqual(g, want)
    for (const pid of pids) rt.stop(pid)
  })

  test('a throw mid-chunk crashes only its actor; the others in the chunk go on', async () => {
    const seenA = []
    const seenB = []
    const a = rt.spawn((m) => {
      seenA.push(m.readUInt32LE(0))
      if (m.readUInt32LE(0) === 1) throw new RangeError('boom at 1')
    })
    const b = rt.spawn((m) => { seenB.push(m.readUInt32LE(0)) })
    for (let i = 0; i < 100; i++) {
      rt.send(a, num(i))
      rt.send(b, num(i))
    }
    const exit = await rt.join(a)
    assert.equal(exit.reason, 'Crash')
    assert.match(exit.metadata, /RangeError: boom at 1/)
    await until(() => seenB.length === 100)
    assert.deepEqual(seenA, [0, 1])
    assert.deepEqual(seenB, Array.from({ length: 100 }, (_, i) => i))
    rt.stop(b)
  })

  test('STOP mid-chunk ends its actor normally; its later messages are dropped', async () => {
    const seen = []
    const a = rt.spawn((m) => {
      seen.push(m.readUInt32LE(0))
      return m.readUInt32LE(0) === 2 ? NodeRuntime.STOP : undefined
    })
    for (let i = 0; i < 50; i++) rt.send(a, num(i))
    assert.deepEqual(await rt.join(a), { reason: 'Normal' })
    assert.deepEqual(seen, [0, 1, 2])
  })

  test('an actor stopped by a handler runs no further handler, even in the same chunk', async () => {
    let stopped = false
    let ranAfterStop = 0
    let victimRuns = 0
    const victim = rt.spawn(() => {
      victimRuns++
      if (stopped) ranAfterStop++
    })
    const killer = rt.spawn(() => {
      stopped = true
      assert.equal(rt.stop(victim), true)
    })
    for (let i = 0; i < 2000; i++) {
      rt.send(victim, num(i))
      if (i === 100) rt.send(killer, num(0))
    }
    assert.equal((await rt.join(victim)).reason, 'Killed')
    assert.ok(stopped)
    assert.equal(ranAfterStop, 0)
    assert.ok(victimRuns <= 2000)
    rt.stop(killer)
  })

  test('a handler that stops an actor and then throws: the stopped one runs no more', async () => {
    let stopped = false
    let ranAfterStop = 0
    const victim = rt.spawn(() => { if (stopped) ranAfterStop++ })
    const killer = rt.spawn(() => {
      stopped = true
      rt.stop(victim)
      throw new Error('after the stop')
    })
    for (let i = 0; i < 2000; i++) {
      rt.send(victim, num(i))
      if (i === 100) rt.send(killer, num(0))
    }
    assert.equal((await rt.join(victim)).reason, 'Killed')
    assert.equal((await rt.join(killer)).reason, 'Crash')
    assert.equal(ranAfterStop, 0)
  })

  test('an async handler holds only its own actor; order and one-at-a-time hold', async () => {
    const gotA = []
    const gotB = []
    let running = 0
    let overlap = false
    const a = rt.spawn(async (m) => {
      if (++running > 1) overlap = true
      await new Promise((r) => setImmediate(r))
      gotA.push(m.readUInt32LE(0))
      running--
    })
    const b = rt.spawn((m) => { gotB.push(m.readUInt32LE(0)) })
    // More than a chunk of each, so chunk boundaries fall while `a` awaits.
    for (let i = 0; i < 1200; i++) {
      rt.send(a, num(i))
      rt.send(b, num(i))
    }
    await until(() => gotA.length === 1200 && gotB.length === 1200, 20_000)
    const want = Array.from({ length: 1200 }, (_, i) => i)
    assert.deepEqual(gotA, want)
    assert.deepEqual(gotB, want)
    assert.equal(overlap, false)
    rt.stop(a)
    rt.stop(b)
  })

  test('small, large and empty payloads in one chunk arrive intact as Buffers with .data', async () => {
    const sent = []
    for (let i = 0; i < 60; i++) {
      const len = [0, 3, 1024, 1025, 70_000][i % 5]
      sent.push(Buffer.alloc(len, i % 251))
    }
    const got = []
    const pid = rt.spawn((m) => {
      assert.ok(Buffer.isBuffer(m))
      assert.equal(m.data, m)
      got.push(m)
    })
    for (const b of sent) rt.send(pid, b)
    await until(() => got.length === sent.length)
    // Later messages must not overwrite the memory of kept ones.
    for (let i = 0; i < 2000; i++) rt.send(pid, Buffer.from('overwrite?'))
    await until(() => got.length === sent.length + 2000)
    for (let i = 0; i < sent.length; i++) assert.equal(Buffer.compare(got[i], sent[i]), 0, `message ${i}`)
    rt.stop(pid)
  })

  test('system messages and user messages share a chunk in order', async () => {
    const seen = []
    const watcher = rt.spawn((m) => { seen.push(m.system ? `down:${m.system.reason}` : m.toString()) })
    const target = rt.spawn(() => { throw new Error('down') })
    rt.monitor(watcher, target)
    rt.send(watcher, Buffer.from('before'))
    await until(() => seen.length === 1)
    rt.send(target, Buffer.from('x'))
    await rt.join(target)
    await until(() => seen.length === 2)
    rt.send(watcher, Buffer.from('after'))
    await until(() => seen.length === 3)
    assert.deepEqual(seen, ['before', 'down:Crash', 'after'])
    rt.stop(watcher)
  })

  test('handlers run with `this` undefined and may spawn and send re-entrantly', async () => {
    let self = 'unset'
    const got = []
    const pid = rt.spawn(function (m) {
      'use strict'
      self = this
      if (m.toString() === 'spawn') {
        const child = rt.spawn((c) => { got.push(c.toString()) })
        rt.send(child, Buffer.from('from a handler'))
      }
    })
    rt.send(pid, Buffer.from('spawn'))
    await until(() => got.length === 1)
    assert.equal(self, undefined)
    assert.deepEqual(got, ['from a handler'])
    rt.stop(pid)
  })
})

describe('send', () => {
  test('checks its receiver and its arguments', () => {
    const pid = rt.spawn(() => {})
    assert.equal(rt.send(pid, new Uint8Array([1, 2])), true)
    assert.throws(() => rt.send.call({}, pid, Buffer.from('x')), /NodeRuntime/)
    const { send } = rt
    assert.throws(() => send(pid, Buffer.from('x')), /NodeRuntime/)
    assert.throws(() => rt.send('1', Buffer.from('x')), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => rt.send(pid, 'text'), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => rt.send(pid), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => rt.send(0.5, Buffer.from('x')), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
    rt.stop(pid)
  })
})

describe('request/response chains between JS actors', () => {
  // `trips` round trips between two actors of `on`; the numbers the pinger saw.
  async function pingPong(on, trips) {
    const seen = []
    const peer = [0, 0]
    let done
    const finished = new Promise((r) => (done = r))
    peer[0] = on.spawn((m) => {
      const n = m.readUInt32LE(0)
      seen.push(n)
      if (n + 1 === trips) done()
      else on.send(peer[1], num(n + 1))
    })
    peer[1] = on.spawn((m) => { on.send(peer[0], m) })
    on.send(peer[1], num(0))
    await finished
    for (const p of peer) on.stop(p)
    return seen
  }

  test('a ping-pong chain runs every round trip, in order, to the end', async () => {
    assert.deepEqual(await pingPong(rt, 5_000), Array.from({ length: 5_000 }, (_, i) => i))
  })

  test('setLinger: 50 us by default, 0 turns polling off, chains still run; bad values throw', async () => {
    const own = new NodeRuntime()
    try {
      assert.equal(own.linger(), 50)
      own.setLinger(0)
      assert.equal(own.linger(), 0)
      assert.deepEqual(await pingPong(own, 500), Array.from({ length: 500 }, (_, i) => i))
      own.setLinger(200)
      assert.equal(own.linger(), 200)
      for (const bad of [-1, 1.5, NaN]) {
        assert.throws(() => own.setLinger(bad), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
      }
      assert.throws(() => own.setLinger('5'), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
      assert.equal(own.linger(), 200)
    } finally {
      own.close()
    }
  })

  test('an endless chain leaves the event loop its turns: timers, I/O and promises run', async () => {
    // The JS thread keeps draining while answers come back within microseconds; it must
    // still hand the loop over now and then.
    // Several chains at once, so there is nearly always an answer on its way.
    let hops = 0
    const peers = []
    for (let c = 0; c < 8; c++) {
      const peer = [0, 0]
      peer[0] = rt.spawn((m) => { hops++; rt.send(peer[1], m) })
      peer[1] = rt.spawn((m) => { hops++; rt.send(peer[0], m) })
      rt.send(peer[0], num(c))
      peers.push(...peer)
    }
    await until(() => hops > 100, 20_000, 'the chain runs')
    const t0 = Date.now()
    let ticks = 0
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 1))
      await Promise.resolve()
      ticks++
    }
    const at = hops
    await until(() => hops > at + 100, 20_000, 'the chain still runs between timers')
    assert.equal(ticks, 20)
    assert.ok(Date.now() - t0 < 10_000, 'timers were held up')
    for (const p of peers) rt.stop(p)
  })
})
