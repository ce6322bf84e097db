// Loads the native addon built by `npm run build` (`iris-node.<platform>.node` next to this
// file) and re-exports it.
'use strict'

const { join } = require('node:path')

function platformSuffix() {
  const { platform, arch } = process
  if (platform === 'linux') {
    if (process.report) process.report.excludeNetwork = true
    const glibc = process.report?.getReport?.().header?.glibcVersionRuntime
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`
  }
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

const file = join(__dirname, `iris-node.${platformSuffix()}.node`)
let binding
try {
  binding = require(file)
} catch (e) {
  throw new Error(`cannot load the Iris addon ${file}: run \`npm run build\` in ${__dirname} first`, { cause: e })
}

module.exports = binding
