// A short tour of the Iris Node.js binding: `node crates/iris-node/examples/tour.mjs`
// (after `npm ci && npm run build` in crates/iris-node).
import { createRequire } from 'node:module'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const { NodeRuntime } = require('../index.js')

const rt = new NodeRuntime()
const say = (...args) => console.log('  ', ...args)
const settled = (cond) =>
  new Promise((resolve, reject) => {
    const deadline = Date.now() + 5000
    const poll = () => (cond() ? resolve() : Date.now() > deadline ? reject(new Error('tour timed out')) : setTimeout(poll, 2))
    poll()
  })

console.log('1. Push actors: one handler call per message, in order')
const greeter = rt.spawn((msg) => {
  say(`greeter got "${msg.toString()}"`)
  if (msg.toString() === 'bye') return NodeRuntime.STOP
}, 50)
for (const word of ['hello', 'world', 'bye']) rt.send(greeter, Buffer.from(word))
say('greeter exited:', await rt.join(greeter))

console.log('2. Pull actors: await mailbox.recv(timeout)')
const saga = rt.spawnWithMailbox(async (mailbox) => {
  const msg = await mailbox.recv()
  say(`saga started by "${msg.toString()}"`)
  const confirm = await mailbox.recv(0.2)
  say(confirm ? 'saga confirmed' : 'saga timed out (no confirmation within 0.2 s)')
})
rt.send(saga, Buffer.from('begin'))
await rt.join(saga)

console.log('3. Let it crash: a throwing handler ends only its actor')
const fragile = rt.spawn((msg) => { throw new Error(`cannot handle ${msg}`) })
const watcher = rt.spawn((msg) => {
  if (msg.system) say(`watcher saw ${msg.system.typeName} of ${msg.system.fromPid}: ${msg.system.reason}`)
})
rt.monitor(watcher, fragile)
rt.send(fragile, Buffer.from('this'))
const crash = await rt.join(fragile)
say('fragile exited with', crash.reason, '-', crash.metadata.split('\n')[0])

console.log('4. Bounded mailboxes and overflow policies')
let release
const blocked = new Promise((r) => (release = r))
let taken = 0
const bounded = rt.spawnBounded(async () => { taken++; await blocked }, 1, 2)
rt.send(bounded, Buffer.from('busy'))
await settled(() => taken === 1)
const results = ['a', 'b', 'c'].map((x) => rt.send(bounded, Buffer.from(x)))
say('capacity 2, dropnew:', results.join(', '), '| queued:', rt.mailboxSize(bounded))
rt.setOverflowPolicy(bounded, 'dropold')
say('dropold accepts:', rt.send(bounded, Buffer.from('d')))
release()

console.log('5. Hot swap and rollback')
const logic = []
const swappable = rt.spawn(() => logic.push('A'))
rt.send(swappable, Buffer.from('x'))
await settled(() => logic.length === 1)
say('swapped to version', rt.hotSwap(swappable, () => logic.push('B')))
rt.send(swappable, Buffer.from('x'))
await settled(() => logic.length === 2)
say('rolled back to version', rt.rollbackBehavior(swappable))
rt.send(swappable, Buffer.from('x'))
await settled(() => logic.length === 3)
say('handled by', logic.join(' then '))

console.log('6. Names, paths and timers')
const ticks = []
const clock = rt.spawn((m) => ticks.push(m.toString()))
rt.register('clock', clock)
rt.registerPath('/system/clock', clock)
say('whereis("clock") =', rt.whereis('clock'), '| listChildren("/system") =', JSON.stringify(rt.listChildren('/system')))
const timer = rt.sendInterval(clock, 10, Buffer.from('tick'))
await settled(() => ticks.length >= 3)
say('interval delivered', ticks.length, 'ticks; cancelled:', rt.cancelTimer(timer))

console.log('7. Supervision: a JS factory restarts a failed worker')
const worker = () => rt.spawn((m) => { if (m.toString() === 'fail') throw new Error('worker failed') })
const first = worker()
rt.superviseWithFactory(first, () => { say('factory called'); return worker() }, 'restartone')
rt.send(first, Buffer.from('fail'))
await settled(() => rt.childPids().length === 1 && rt.childPids()[0] !== first)
say('restarted as pid', rt.childPids()[0])

console.log('8. The mesh: two nodes in one process')
process.env.IRIS_COOKIE ??= 'iris-tour-cookie'
const remote = new NodeRuntime()
const addr = await remote.listen('127.0.0.1:0')
const inbox = []
remote.register('inbox', remote.spawn((m) => inbox.push(m.toString())))
const proxy = await rt.resolveRemote(addr, 'inbox')
say(`resolved "inbox" at ${addr} to local proxy ${proxy}`)
rt.send(proxy, Buffer.from('over the wire'))
await settled(() => inbox.length === 1)
say('remote inbox got', JSON.stringify(inbox))

console.log('9. 100,000 actors, one message each')
let handled = 0
const t0 = Date.now()
const pids = []
for (let i = 0; i < 100_000; i++) pids.push(rt.spawn(() => { handled++ }))
for (const pid of pids) rt.send(pid, Buffer.from('hi'))
await settled(() => handled === 100_000)
say(`spawned and handled in ${Date.now() - t0} ms`)

console.log('10. Node and Python over the mesh')
const root = fileURLToPath(new URL('../../../', import.meta.url))
const venvPython = `${root}target/venv/bin/python`
const python = process.env.IRIS_PYTHON ?? (existsSync(venvPython) ? venvPython : 'python3')
if (spawnSync(python, ['-c', 'import iris']).status !== 0) {
  say('skipped: no Python with the iris module (cargo xtask demo builds it first)')
} else {
  const PY_NODE = `
import sys, iris
rt = iris.Runtime()
def greet(msg):
    print("python got", bytes(msg).decode(), flush=True)
rt.register("py_greeter", rt.spawn(greet))
print(rt.listen("127.0.0.1:0"), flush=True)
sys.stdin.read()
`
  const py = spawn(python, ['-c', PY_NODE], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: py.stdout })
  const pyAddr = await new Promise((resolve) => lines.once('line', resolve))
  const greeterPid = await rt.resolveRemote(pyAddr, 'py_greeter')
  say(`resolved the Python actor at ${pyAddr} to local proxy ${greeterPid}`)
  const heard = new Promise((resolve) => lines.once('line', resolve))
  rt.send(greeterPid, Buffer.from('hello from Node'))
  say('the Python node printed:', JSON.stringify(await heard))
  py.stdin.end()
  await new Promise((resolve) => py.once('exit', resolve))
}

remote.close()
rt.close()
console.log('done')
