import { test, describe, after } from 'node:test'
import assert from 'node:assert/strict'

import { iris, until } from './helpers.mjs'

const { NodeRuntime } = iris
const rt = new NodeRuntime()
after(() => rt.close())

const buf = (s) => Buffer.from(s)
const idle = () => rt.spawn(() => {})

describe('names', () => {
  test('register, whereis/resolve, sendNamed, unregister', async () => {
    const got = []
    const pid = rt.spawn((m) => { got.push(m.toString()) })
    rt.register('auth_worker', pid)
    assert.equal(rt.whereis('auth_worker'), pid)
    assert.equal(rt.resolve('auth_worker'), pid)
    assert.equal(rt.sendNamed('auth_worker', buf('login')), true)
    await until(() => got.length === 1)
    assert.deepEqual(got, ['login'])
    assert.equal(rt.sendNamed('nobody', buf('x')), false)
    assert.throws(() => rt.register('auth_worker', idle()), { code: 'ERR_IRIS_NAME_TAKEN' })
    assert.throws(() => rt.register('', pid), { code: 'ERR_IRIS_INVALID_NAME' })
    assert.equal(rt.unregister('auth_worker'), pid)
    assert.equal(rt.whereis('auth_worker'), null)
    assert.equal(rt.unregister('auth_worker'), null)
  })

  test('names of dead actors are removed', async () => {
    const pid = idle()
    rt.register('short-lived', pid)
    rt.stop(pid)
    await rt.join(pid)
    await until(() => rt.whereis('short-lived') === null)
    rt.register('short-lived', idle())
  })
})

describe('paths', () => {
  test('registerPath, whereisPath, listChildren, listChildrenDirect, unregisterPath', () => {
    const one = idle()
    const two = idle()
    const deep = idle()
    rt.registerPath('/system/service/one', one)
    rt.registerPath('/system/service/two', two)
    rt.registerPath('/system/service/two/deep', deep)
    assert.equal(rt.whereisPath('/system/service/one'), one)
    assert.deepEqual(rt.listChildren('/system/service'), [
      { path: '/system/service/one', pid: one },
      { path: '/system/service/two', pid: two },
      { path: '/system/service/two/deep', pid: deep },
    ])
    assert.deepEqual(rt.listChildrenDirect('/system/service'), [
      { path: '/system/service/one', pid: one },
      { path: '/system/service/two', pid: two },
    ])
    assert.equal(rt.unregisterPath('/system/service/one'), one)
    assert.equal(rt.whereisPath('/system/service/one'), null)
  })

  test('malformed paths throw ERR_IRIS_INVALID_PATH', () => {
    for (const bad of ['no-slash', '/a//b', '']) {
      assert.throws(() => rt.registerPath(bad, idle()), { code: 'ERR_IRIS_INVALID_PATH' }, bad)
    }
    assert.throws(() => rt.listChildren('bad'), { code: 'ERR_IRIS_INVALID_PATH' })
  })
})

describe('links and monitors', () => {
  test('a crash kills the linked actor; a trapping one gets EXIT', async () => {
    const a = rt.spawn(() => { throw new Error('a fails') })
    const b = idle()
    rt.link(a, b)
    const events = []
    const trapper = rt.spawn((m) => { if (m.system) events.push(m.system) })
    const c = rt.spawn(() => { throw new Error('c fails') })
    rt.trapExit(trapper)
    rt.link(c, trapper)
    rt.send(a, buf('x'))
    rt.send(c, buf('x'))
    const eb = await rt.join(b)
    assert.equal(eb.reason, 'Killed')
    await until(() => events.length === 1)
    assert.equal(events[0].typeName, 'EXIT')
    assert.equal(events[0].fromPid, c)
    assert.equal(events[0].targetPid, trapper)
    assert.equal(events[0].reason, 'Crash')
    assert.match(events[0].metadata, /c fails/)
    assert.equal(rt.isAlive(trapper), true)
    assert.equal(rt.unlink(c, trapper), false)
  })

  test('monitor delivers DOWN; demonitor; noproc for dead targets', async () => {
    const downs = []
    const watcher = rt.spawn((m) => { if (m.system) downs.push(m.system) })
    const target = idle()
    const ref = rt.monitor(watcher, target)
    assert.equal(typeof ref, 'number')
    rt.stop(target)
    await until(() => downs.length === 1)
    assert.equal(downs[0].typeName, 'DOWN')
    assert.equal(downs[0].fromPid, target)
    assert.equal(downs[0].reason, 'Killed')
    assert.equal(downs[0].monitorRef, ref)
    // A recently dead target answers with its remembered exit, an unknown one with noproc.
    rt.monitor(watcher, target)
    rt.monitor(watcher, 2 ** 50)
    await until(() => downs.length === 3)
    assert.equal(downs[1].reason, 'Killed')
    assert.equal(downs[2].reason, 'noproc')
    const other = idle()
    const r2 = rt.monitor(watcher, other)
    assert.equal(rt.demonitor(r2), true)
    assert.equal(rt.demonitor(r2), false)
    assert.throws(() => rt.link(target, other), { code: 'ERR_IRIS_NO_PROCESS' })
  })

  test('a pull actor sees system messages from recv', async () => {
    let seen
    const watcher = rt.spawnWithMailbox(async (mb) => { seen = await mb.recv() })
    const target = idle()
    rt.monitor(watcher, target)
    rt.stop(target)
    await rt.join(watcher)
    assert.equal(seen.system.typeName, 'DOWN')
    assert.equal(seen.data, undefined)
  })
})

describe('supervision', () => {
  test('watch and childPids/childrenCount', async () => {
    const own = new NodeRuntime()
    const pid = own.spawn(() => {})
    own.watch(pid)
    assert.deepEqual(own.childPids(), [pid])
    assert.equal(own.childrenCount(), 1)
    own.stop(pid)
    await until(() => own.childrenCount() === 0)
    assert.throws(() => own.watch(pid, 'sideways'), { code: 'ERR_IRIS_INVALID_STRATEGY' })
    own.close()
  })

  test('superviseWithFactory restarts through a JS factory, only on failure', async () => {
    const own = new NodeRuntime()
    let calls = 0
    const worker = () => own.spawn((m) => { if (m.toString() === 'die') throw new Error('worker died') })
    const first = worker()
    own.register('worker', first)
    own.superviseWithFactory(first, () => { calls++; return worker() }, 'restartone')
    assert.equal(calls, 0)
    own.send(first, buf('die'))
    await until(() => calls === 1 && own.childPids().length === 1 && own.childPids()[0] !== first)
    const second = own.childPids()[0]
    assert.equal(own.isAlive(second), true)
    await until(() => own.whereis('worker') === second, 5000, 're-registration')
    own.close()
  })

  test('path supervisors', async () => {
    const own = new NodeRuntime()
    const pid = own.spawnWithPathObserved(10, '/svc/test/one')
    assert.equal(own.whereisPath('/svc/test/one'), pid)
    assert.throws(() => own.pathSupervisorWatch('/svc/none', pid), { code: 'ERR_IRIS_NO_SUPERVISOR' })
    const sup = own.createPathSupervisor('/svc/test')
    assert.equal(typeof sup, 'number')
    own.pathSupervisorWatch('/svc/test', pid)
    assert.deepEqual(own.pathSupervisorChildren('/svc/test'), [pid])
    let restarted = 0
    const w = own.spawn(() => { throw new Error('x') })
    own.pathSuperviseWithFactory('/svc/test', w, () => { restarted++; return own.spawn(() => {}) })
    own.send(w, buf('x'))
    await until(() => restarted === 1)
    assert.equal(own.removePathSupervisor('/svc/test'), true)
    assert.equal(own.removePathSupervisor('/svc/test'), false)
    assert.deepEqual(own.pathSupervisorChildren('/svc/test'), [])
    assert.equal(own.isAlive(pid), true)
    assert.deepEqual(own.watchPath('/svc/test'), [pid])
    own.close()
  })
})
