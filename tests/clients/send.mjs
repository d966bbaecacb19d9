// Sends Segment-spec calls with the real @segment/analytics-node library, one batch, and reports
// what the library itself saw, so the Python tests can check the collector from a Node client.
//   stdin:  {"host": "http://127.0.0.1:port", "writeKey": "...", "calls": [{"type": "track", ...}]}
//           each call is the object the library's method of that name takes (userId, event, ...)
//   stdout: {"errors": [null | "message", ...one per call], "statuses": [200, ...one per request]}
import { Analytics } from '@segment/analytics-node'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const { host, writeKey, calls } = JSON.parse(Buffer.concat(chunks).toString('utf8'))

const analytics = new Analytics({
  writeKey,
  host,
  flushAt: calls.length, // every call in one batch, posted when the last one is queued
  flushInterval: 60000,
  maxRetries: 3,
  httpRequestTimeout: 5000,
})
const statuses = []
analytics.on('http_response', (response) => statuses.push(response.status))

const errors = await Promise.all(
  calls.map(
    ({ type, ...params }) =>
      new Promise((resolve) => {
        analytics[type](params, (err) => resolve(err ? String(err.reason ?? err) : null))
      }),
  ),
)
await analytics.closeAndFlush({ timeout: 10000 })
process.stdout.write(JSON.stringify({ errors, statuses }) + '\n')
