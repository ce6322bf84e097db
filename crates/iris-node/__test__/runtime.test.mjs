import { test, describe, after } from 'node:test'
import assert from 'node:assert/strict'

import { iris, until, gate } from './helpers.mjs'

const { NodeRuntime, Mailbox } = iris
const rt = new NodeRuntime()
after(() => rt.close())

const buf = (s) => Buffer.from(s)

describe('push actors', () => {
  test('handlers get Buffers with .data, in order, one at a time', async () => {
    const got = []
    let running = 0
    let overlap = false
    const pid = rt.spawn(async (msg) => {
      assert.ok(Buffer.isBuffer(msg))
      assert.equal(msg.data, msg)
      running++
      if (running > 1) overlap = true
      await new Promise((r) => setImmediate(r))
      got.push(msg.toString())
      running--
    }, 3)
    assert.equal(typeof pid, 'number')
    for (let i = 0; i < 50; i++) assert.equal(rt.send(pid, buf(`m${i}`)), true)
    await until(() => got.length === 50)
    assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => `m${i}`))
    assert.equal(overlap, false)
  })

  test('returning NodeRuntime.STOP ends the actor normally', async () => {
    const pid = rt.spawn((m) => (m.toString() === 'quit' ? NodeRuntime.STOP : undefined))
    rt.send(pid, buf('work'))
    rt.send(pid, buf('quit'))
    assert.deepEqual(await rt.join(pid), { reason: 'Normal' })
    assert.equal(rt.isAlive(pid), false)
    assert.equal(rt.send(pid, buf('late')), false)
    assert.deepEqual(rt.exitInfo(pid), { reason: 'Normal' })
  })

  test('an async handler resolving to STOP ends the actor', async () => {
    const pid = rt.spawn(async () => NodeRuntime.STOP)
    rt.send(pid, buf('x'))
    assert.equal((await rt.join(pid)).reason, 'Normal')
  })

  test('a throwing handler crashes only its actor, with the stack as metadata', async () => {
    const seen = []
    const pid = rt.spawn((m) => {
      seen.push(m.toString())
      throw new TypeError('bad input ' + m)
    })
    rt.send(pid, buf('one'))
    rt.send(pid, buf('two'))
    const exit = await rt.join(pid)
    assert.equal(exit.reason, 'Crash')
    assert.match(exit.metadata, /TypeError: bad input one/)
    assert.match(exit.metadata, /runtime\.test\.mjs/)
    assert.deepEqual(seen, ['one'])
    // The runtime goes on.
    let ok = false
    const other = rt.spawn(() => { ok = true })
    rt.send(other, buf('still here'))
    await until(() => ok)
  })

  test('a rejecting async handler crashes its actor; thrown non-errors too', async () => {
    const a = rt.spawn(async () => { throw new Error('later') })
    rt.send(a, buf('x'))
    const ea = await rt.join(a)
    assert.equal(ea.reason, 'Crash')
    assert.match(ea.metadata, /Error: later/)
    const b = rt.spawn(() => { throw 'a string' })
    rt.send(b, buf('x'))
    assert.deepEqual(await rt.join(b), { reason: 'Crash', metadata: 'a string' })
  })

  test('stop kills after the current message and drops the queued ones', async () => {
    const g = gate()
    const got = []
    const pid = rt.spawn(async (m) => { got.push(m.toString()); await g.p })
    rt.send(pid, buf('first'))
    await until(() => got.length === 1)
    for (let i = 0; i < 5; i++) rt.send(pid, buf('queued'))
    assert.equal(rt.stop(pid), true)
    assert.equal(rt.send(pid, buf('after')), false)
    g.open()
    assert.equal((await rt.join(pid)).reason, 'Killed')
    assert.deepEqual(got, ['first'])
    assert.equal(rt.stop(pid), false)
  })

  test('join of an unknown pid resolves to null; isAlive is false', async () => {
    assert.equal(await rt.join(2 ** 52), null)
    assert.equal(rt.isAlive(2 ** 52), false)
    assert.equal(rt.mailboxSize(2 ** 52), null)
    assert.equal(rt.send(2 ** 52, buf('x')), false)
  })
})

describe('mailboxes', () => {
  test('bounded: dropnew rejects once capacity is reached; mailboxSize counts', async () => {
    const g = gate()
    let started = 0
    const pid = rt.spawnBounded(async () => { started++; await g.p }, 1, 2)
    assert.equal(rt.send(pid, buf('in-flight')), true)
    await until(() => started === 1)
    assert.equal(rt.send(pid, buf('one')), true)
    assert.equal(rt.send(pid, buf('two')), true)
    assert.equal(rt.mailboxSize(pid), 2)
    assert.equal(rt.send(pid, buf('three')), false)
    g.open()
    await until(() => started === 3)
    rt.stop(pid)
  })

  test('capacity 0 is an error with a code', () => {
    assert.throws(() => rt.spawnBounded(() => {}, 1, 0), { code: 'ERR_IRIS_CAPACITY' })
  })

  test('dropold keeps the newest; redirect sends overflow to the target', async () => {
    const g = gate()
    const got = []
    let started = 0
    const pid = rt.spawnBounded(async (m) => { started++; got.push(m.toString()); await g.p }, 1, 1)
    rt.send(pid, buf('a'))
    await until(() => started === 1)
    rt.setOverflowPolicy(pid, 'dropold')
    assert.equal(rt.send(pid, buf('b')), true)
    assert.equal(rt.send(pid, buf('c')), true)
    const fallback = []
    const fb = rt.spawn((m) => { fallback.push(m.toString()) })
    rt.setOverflowPolicy(pid, 'redirect', fb)
    assert.equal(rt.send(pid, buf('d')), true)
    await until(() => fallback.length === 1)
    assert.deepEqual(fallback, ['d'])
    g.open()
    await until(() => got.length === 2)
    assert.deepEqual(got, ['a', 'c'])
    rt.stop(pid)
    rt.stop(fb)
  })

  test('block: send does not block the event loop, sendAsync waits for room', async () => {
    const g = gate()
    const got = []
    const pid = rt.spawnBounded(async (m) => { got.push(m.toString()); await g.p }, 1, 1)
    rt.send(pid, buf('1'))
    await until(() => got.length === 1)
    rt.setOverflowPolicy(pid, 'block')
    assert.equal(rt.send(pid, buf('2')), true)
    let done = false
    const pending = rt.sendAsync(pid, buf('3')).then((r) => { done = r })
    await new Promise((r) => setImmediate(r))
    assert.equal(done, false)
    for (let i = 4; i <= 6; i++) assert.equal(rt.send(pid, buf(String(i))), true)
    g.open()
    await pending
    assert.equal(done, true)
    await until(() => got.length === 6)
    // The background sends keep their order among themselves.
    assert.deepEqual(got.filter((x) => x !== '3'), ['1', '2', '4', '5', '6'])
    rt.stop(pid)
  })

  test('policy errors carry codes', () => {
    const unbounded = rt.spawn(() => {})
    assert.throws(() => rt.setOverflowPolicy(unbounded, 'dropold'), { code: 'ERR_IRIS_UNBOUNDED' })
    const bounded = rt.spawnBounded(() => {}, 1, 1)
    assert.throws(() => rt.setOverflowPolicy(bounded, 'sideways'), { code: 'ERR_IRIS_INVALID_POLICY' })
    assert.throws(() => rt.setOverflowPolicy(bounded, 'redirect'), { code: 'ERR_IRIS_INVALID_POLICY' })
    rt.stop(bounded)
    assert.throws(() => rt.setOverflowPolicy(bounded, 'dropnew'), { code: 'ERR_IRIS_NO_PROCESS' })
  })
})

describe('pull actors', () => {
  test('recv resolves messages, null on timeout, and the actor ends with the function', async () => {
    const log = []
    const pid = rt.spawnWithMailbox(async (mailbox) => {
      assert.ok(mailbox instanceof Mailbox)
      assert.equal(mailbox.pid, pid)
      const msg = await mailbox.recv()
      log.push(msg.toString(), msg.data.toString())
      log.push(await mailbox.recv(0.02))
      log.push(mailbox.tryRecv())
    }, 100)
    rt.send(pid, buf('hello'))
    assert.deepEqual(await rt.join(pid), { reason: 'Normal' })
    assert.deepEqual(log, ['hello', 'hello', null, null])
  })

  test('a stopped pull actor\'s recv rejects with ERR_IRIS_MAILBOX_CLOSED', async () => {
    let err
    const pid = rt.spawnWithMailbox(async (mb) => {
      try { await mb.recv() } catch (e) { err = e; throw e }
    })
    await new Promise((r) => setImmediate(r))
    rt.stop(pid)
    assert.equal((await rt.join(pid)).reason, 'Killed')
    await until(() => err !== undefined)
    assert.equal(err.code, 'ERR_IRIS_MAILBOX_CLOSED')
  })

  test('a throwing mailbox function crashes its actor', async () => {
    const pid = rt.spawnWithMailbox(async (mb) => { await mb.recv(); throw new Error('pull boom') })
    rt.send(pid, buf('x'))
    const e = await rt.join(pid)
    assert.equal(e.reason, 'Crash')
    assert.match(e.metadata, /pull boom/)
  })

  test('selectiveRecv picks the first match; the others keep their order', async () => {
    const log = []
    const pid = rt.spawnWithMailbox(async (mb) => {
      // Waits for "c" although "a" and "b" arrive first.
      const c = await mb.selectiveRecv((m) => m.toString() === 'c')
      log.push(c.toString(), mb.stashed)
      // From the passed-over messages.
      const b = await mb.selectiveRecv((m) => m.toString() === 'b', 1)
      log.push(b.toString())
      log.push(await mb.selectiveRecv(() => false, 0.02))
      log.push((await mb.recv()).toString(), (await mb.recv()).toString())
      rt.send(mb.pid, buf('e'))
      try {
        await mb.selectiveRecv(() => { throw new Error('bad matcher') }, 5)
      } catch (e) {
        log.push(e.message)
      }
    })
    for (const x of ['a', 'b', 'c', 'd']) rt.send(pid, buf(x))
    assert.deepEqual(await rt.join(pid), { reason: 'Normal' })
    assert.deepEqual(log.slice(0, 3), ['c', 2, 'b'])
    assert.equal(log[3], null)
    assert.deepEqual(log.slice(4, 6), ['a', 'd'])
    assert.match(log[6], /bad matcher/)
  })

  test('thousands of pending recv calls do not block anything', async () => {
    const n = 2000
    let got = 0
    const pids = []
    for (let i = 0; i < n; i++) {
      pids.push(rt.spawnWithMailbox(async (mb) => { await mb.recv(); got++ }))
    }
    await new Promise((r) => setTimeout(r, 10))
    // The event loop is free: timers and other actors still run.
    let pushed = false
    const p = rt.spawn(() => { pushed = true })
    rt.send(p, buf('x'))
    await until(() => pushed)
    for (const pid of pids) rt.send(pid, buf('go'))
    await until(() => got === n, 10000, 'all pull actors')
  })
})

describe('children, virtual actors, timers, hot swap, observation', () => {
  test('children exit with Shutdown when their parent exits', async () => {
    const parent = rt.spawn((m) => (m.toString() === 'quit' ? NodeRuntime.STOP : undefined))
    const child = rt.spawnChild(parent, () => {})
    const pullChild = rt.spawnChildWithMailbox(parent, async (mb) => { await mb.recv() })
    assert.deepEqual(rt.childrenOf(parent).sort(), [child, pullChild].sort())
    rt.send(parent, buf('quit'))
    await rt.join(parent)
    assert.equal((await rt.join(child)).reason, 'Shutdown')
    assert.equal((await rt.join(pullChild)).reason, 'Shutdown')
    assert.throws(() => rt.spawnChild(parent, () => {}), { code: 'ERR_IRIS_PARENT_DEAD' })
  })

  test('spawnChildPool spawns workers under a parent', async () => {
    const parent = rt.spawn(() => {})
    const seen = []
    const pool = rt.spawnChildPool(parent, 3, (m) => { seen.push(m.toString()) })
    assert.equal(pool.length, 3)
    pool.forEach((pid, i) => rt.send(pid, buf(`w${i}`)))
    await until(() => seen.length === 3)
    const quiet = rt.spawnChildPool(parent)
    assert.equal(quiet.length, 4)
    assert.equal(rt.send(quiet[0], buf('ignored')), true)
    assert.equal(rt.childrenOf(parent).length, 7)
    rt.stop(parent)
    for (const pid of [...pool, ...quiet]) assert.equal((await rt.join(pid)).reason, 'Shutdown')
  })

  test('version() names the package version', () => {
    assert.match(iris.version(), /^\d+\.\d+\.\d+/)
  })

  test('virtual actors start on the first message and idle out', async () => {
    const got = []
    const pid = rt.spawnVirtual((m) => { got.push(m.toString()) }, 10, 30)
    assert.equal(rt.isAlive(pid), true)
    rt.send(pid, buf('wake'))
    await until(() => got.length === 1)
    assert.equal((await rt.join(pid)).reason, 'Timeout')
  })

  test('reactivating virtual actors keep their pid across idle periods', async () => {
    const got = []
    const pid = rt.spawnVirtual((m) => { got.push(m.toString()) }, 10, 20, true)
    rt.send(pid, buf('first'))
    await until(() => got.length === 1)
    // Past the idle timeout it is dormant, not dead; the next message starts it again.
    await new Promise((r) => setTimeout(r, 60))
    assert.equal(rt.isAlive(pid), true)
    assert.equal(rt.send(pid, buf('second')), true)
    await until(() => got.length === 2)
    assert.deepEqual(got, ['first', 'second'])
    rt.stop(pid)
  })

  test('timers: sendAfter, sendInterval, cancelTimer', async () => {
    const got = []
    const pid = rt.spawn((m) => { got.push(m.toString()) })
    rt.sendAfter(pid, 5, buf('once'))
    const cancelled = rt.sendAfter(pid, 10000, buf('never'))
    assert.equal(rt.cancelTimer(cancelled), true)
    assert.equal(rt.cancelTimer(cancelled), false)
    const tick = rt.sendInterval(pid, 5, buf('tick'))
    await until(() => got.filter((x) => x === 'tick').length >= 3)
    assert.equal(rt.cancelTimer(tick), true)
    assert.ok(got.includes('once'))
    assert.ok(!got.includes('never'))
    rt.stop(pid)
  })

  test('hotSwap, behaviorVersion and rollbackBehavior', async () => {
    const got = []
    const pid = rt.spawn(() => { got.push('A') }, 10)
    assert.equal(rt.behaviorVersion(pid), 1)
    rt.send(pid, buf('test'))
    await until(() => got.length === 1)
    assert.equal(rt.hotSwap(pid, () => { got.push('B') }), 2)
    rt.send(pid, buf('test'))
    await until(() => got.length === 2)
    assert.equal(rt.rollbackBehavior(pid), 1)
    rt.send(pid, buf('test'))
    await until(() => got.length === 3)
    assert.deepEqual(got, ['A', 'B', 'A'])
    assert.throws(() => rt.rollbackBehavior(pid, 5), { code: 'ERR_IRIS_NO_SUCH_VERSION' })
    const pull = rt.spawnWithMailbox(async (mb) => { await mb.recv() })
    assert.throws(() => rt.hotSwap(pull, () => {}), { code: 'ERR_IRIS_NOT_SWAPPABLE' })
    rt.stop(pull)
    rt.stop(pid)
    await rt.join(pid)
    assert.throws(() => rt.hotSwap(pid, () => {}), { code: 'ERR_IRIS_NO_PROCESS' })
    assert.equal(rt.behaviorVersion(pid), null)
  })

  test('observed actors record user messages as { data }', async () => {
    const obs = rt.spawnObserved(10)
    rt.send(obs, buf('one'))
    rt.send(obs, new Uint8Array([116, 119, 111]))
    await until(() => rt.getMessages(obs).length === 2)
    const msgs = rt.getMessages(obs)
    assert.deepEqual(msgs.map((m) => m.data.toString()), ['one', 'two'])
    assert.equal(msgs[0].system, undefined)
    assert.deepEqual(rt.getMessages(2 ** 50), [])
  })
})

describe('arguments', () => {
  test('bad argument types throw TypeError', () => {
    assert.throws(() => rt.send('1', buf('x')), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => rt.send(1, 'text'), TypeError)
    assert.throws(() => rt.send(1, [1, 2]), TypeError)
    assert.throws(() => rt.send(1, new Uint16Array(2)), TypeError)
    assert.throws(() => rt.spawn('not a function'), TypeError)
    assert.throws(() => rt.spawn(() => {}, 'many'), TypeError)
    assert.throws(() => rt.spawnWithMailbox(42), TypeError)
  })

  test('out-of-range numbers throw RangeError', () => {
    assert.throws(() => rt.send(0, buf('x')), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
    assert.throws(() => rt.send(1.5, buf('x')), RangeError)
    assert.throws(() => rt.send(2 ** 53, buf('x')), RangeError)
    assert.throws(() => rt.spawn(() => {}, -1), RangeError)
  })
})

test('close stops every actor and refuses new ones', async () => {
  const own = new NodeRuntime()
  const pid = own.spawn(() => {})
  const pull = own.spawnWithMailbox(async (mb) => { await mb.recv() })
  assert.equal(own.closed, false)
  own.close()
  own.close()
  assert.equal(own.closed, true)
  assert.equal((await own.join(pid)).reason, 'Shutdown')
  assert.equal((await own.join(pull)).reason, 'Shutdown')
  assert.throws(() => own.spawn(() => {}), { code: 'ERR_IRIS_CLOSED' })
  const other = new NodeRuntime()
  other.spawn(() => {})
  assert.equal(await other.shutdown(), true)
  assert.equal(other.actorCount(), 0)
})
