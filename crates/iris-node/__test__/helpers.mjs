// Shared helpers of the node:test suites: the package, and waiting with a deadline.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

export const iris = require('../index.js')

/** Polls `cond` on timers until it holds; fails after `ms`. Never a fixed sleep. */
export async function until(cond, ms = 5000, what = 'condition') {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 2))
  }
}

/** A promise and its resolver, to hold a handler until the test lets it go. */
export function gate() {
  let open
  const p = new Promise((r) => (open = r))
  return { p, open }
}
