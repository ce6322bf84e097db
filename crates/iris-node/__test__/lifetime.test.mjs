// A script ends by itself once the work it started is done, and not before.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const index = JSON.stringify(fileURLToPath(new URL('../index.js', import.meta.url)))

function run(body) {
  const script = `const { NodeRuntime } = require(${index});\n${body}`
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', script], { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`))
      else resolve(stdout.trim().split('\n'))
    })
  })
}

test('pending messages, timers and async handlers run before the process exits', async () => {
  const out = await run(`
    const rt = new NodeRuntime()
    const pid = rt.spawn((m) => console.log('got', m.toString()))
    rt.send(pid, Buffer.from('hello'))
    rt.sendAfter(pid, 50, Buffer.from('later'))
    const slow = rt.spawn(async (m) => { await new Promise((r) => setTimeout(r, 30)); console.log('slow', m.toString()) })
    rt.send(slow, Buffer.from('x'))
    const pull = rt.spawnWithMailbox(async (mb) => console.log('pull', (await mb.recv()).toString()))
    rt.send(pull, Buffer.from('x'))
  `)
  assert.deepEqual(out.sort(), ['got hello', 'got later', 'pull x', 'slow x'].sort())
})

test('idle actors do not keep the process alive; close() lets a listener go', async () => {
  const out = await run(`
    const rt = new NodeRuntime()
    for (let i = 0; i < 1000; i++) rt.spawn(() => {}, 50)
    rt.listen('127.0.0.1:0').then((addr) => { console.log('listening'); rt.close() })
  `)
  assert.deepEqual(out, ['listening'])
})

test('a throwing handler never takes the process down', async () => {
  const out = await run(`
    const rt = new NodeRuntime()
    const pid = rt.spawn(() => { throw new Error('boom') })
    const apid = rt.spawn(async () => { throw new Error('async boom') })
    rt.send(pid, Buffer.from('x'))
    rt.send(apid, Buffer.from('x'))
    Promise.all([rt.join(pid), rt.join(apid)]).then((e) => console.log(e.map((x) => x.reason).join(',')))
  `)
  assert.deepEqual(out, ['Crash,Crash'])
})
