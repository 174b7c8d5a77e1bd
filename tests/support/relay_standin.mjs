// A relay stand-in for tests: it follows one PDS's firehose with @atproto/sync (signature
// and inclusion proofs of every commit verified against the account's key from the PLC
// directory) and answers the relay lexicon for it: getHostStatus, getRepoStatus,
// getLatestCommit, listHosts, requestCrawl.
//
// @atproto/sync drops an op whose proof fails without telling its caller, so the stand-in
// counts ops in (from the raw commit) against ops out (verified) and reports any difference.
// Test controls (not lexicon): POST /control {hostStatus, accountStatus: {did: status},
// paused}; GET /control/stats; POST /control/forged-commit (a commit for `did` signed with a
// key the DID does not list, which must be rejected).
//
// Environment: PDS_URL (http base of the PDS or its edge), PLC_URL, PDS_HOSTNAME, PORT (0:
// any; the chosen port is printed as `listening PORT`).
import http from 'node:http'
import { IdResolver } from '@atproto/identity'
import { Firehose, parseCommitAuthenticated } from '@atproto/sync'
import { MemoryBlockstore, Repo, WriteOpAction, blocksToCarFile } from '@atproto/repo'
import { Secp256k1Keypair } from '@atproto/crypto'

const pdsUrl = process.env.PDS_URL.replace(/\/$/, '')
const hostname = process.env.PDS_HOSTNAME
// The identity package's default fetch refuses http:, and the local PLC directory is http.
const idResolver = new IdResolver({ plcUrl: process.env.PLC_URL, fetch: globalThis.fetch })

const state = {
  crawled: false,
  hostStatus: 'active',
  paused: false,
  seq: null,
  repos: new Map(), // did -> { rev, cid, active, status }
  accountStatus: {}, // did -> status override (throttled, ...)
  opsIn: 0,
  opsVerified: 0,
  commits: 0,
  errors: [],
}

class CountingFirehose extends Firehose {
  async parseEvt(evt) {
    const isCommit = evt.$type === 'com.atproto.sync.subscribeRepos#commit' || (evt.ops && evt.commit)
    const parsed = await super.parseEvt(evt)
    // Both counts move together, after the verification: a reader never sees a commit half
    // counted. A commit that fails verification counts its ops in and none verified.
    if (isCommit) {
      state.opsIn += evt.ops.length
      state.opsVerified += parsed.filter((e) => ['create', 'update', 'delete'].includes(e.event)).length
      state.commits += 1
    }
    return parsed
  }
}

let firehose = null
const startFirehose = () => {
  if (firehose) return
  firehose = new CountingFirehose({
    idResolver,
    service: pdsUrl.replace(/^http/, 'ws'),
    getCursor: async () => state.seq ?? 0,
    unauthenticatedHandles: true,
    handleEvent: async (evt) => {
      if (state.paused) return
      if (typeof evt.seq === 'number') state.seq = Math.max(state.seq ?? 0, evt.seq)
      const repo = state.repos.get(evt.did) ?? { active: true }
      if (evt.event === 'account') {
        repo.active = evt.active
        repo.status = evt.status
      } else if (evt.rev) {
        repo.rev = repo.rev && repo.rev > evt.rev ? repo.rev : evt.rev
        repo.cid = (evt.commit ?? evt.cid)?.toString()
      }
      state.repos.set(evt.did, repo)
    },
    onError: (err) => {
      state.errors.push(`${err.name}: ${err.message}${err.cause ? ` (${err.cause})` : ''}`)
    },
  })
  firehose.start()
}

async function forgedCommit(did) {
  const wrongKey = await Secp256k1Keypair.create()
  const storage = new MemoryBlockstore()
  const record = { $type: 'app.bsky.feed.post', text: 'forged', createdAt: new Date().toISOString() }
  const repo = await Repo.create(storage, did, wrongKey, [
    { action: WriteOpAction.Create, collection: 'app.bsky.feed.post', rkey: '3forgedforged', record },
  ])
  const path = 'app.bsky.feed.post/3forgedforged'
  const cid = await repo.data.get(path)
  const blocks = await blocksToCarFile(repo.cid, storage.blocks)
  const evt = { repo: did, ops: [{ action: 'create', path, cid }], blocks, commit: repo.cid, rev: repo.commit.rev, seq: 0, time: new Date().toISOString() }
  try {
    const ops = await parseCommitAuthenticated(idResolver, evt, null)
    return { rejected: false, accepted: ops.length }
  } catch (err) {
    return { rejected: true, error: `${err.name}: ${err.message}` }
  }
}

const send = (res, status, body) => {
  const data = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) })
  res.end(data)
}

const readBody = async (req) => {
  let data = ''
  for await (const chunk of req) data += chunk
  return data ? JSON.parse(data) : {}
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://relay')
  const q = Object.fromEntries(url.searchParams)
  const repoOf = (did) => state.repos.get(did)
  try {
    switch (`${req.method} ${url.pathname}`) {
      case 'GET /xrpc/com.atproto.sync.getHostStatus':
        if (!state.crawled || q.hostname !== hostname) return send(res, 400, { error: 'HostNotFound', message: 'unknown host' })
        return send(res, 200, { hostname, seq: state.seq ?? 0, accountCount: state.repos.size, status: state.hostStatus })
      case 'GET /xrpc/com.atproto.sync.listHosts':
        return send(res, 200, { hosts: state.crawled ? [{ hostname, seq: state.seq ?? 0, accountCount: state.repos.size, status: state.hostStatus }] : [] })
      case 'GET /xrpc/com.atproto.sync.getRepoStatus': {
        const repo = repoOf(q.did)
        if (!repo) return send(res, 400, { error: 'RepoNotFound', message: 'unknown repo' })
        const status = state.accountStatus[q.did] ?? repo.status
        return send(res, 200, { did: q.did, active: !status && repo.active !== false, ...(status ? { status } : {}), ...(repo.rev ? { rev: repo.rev } : {}) })
      }
      case 'GET /xrpc/com.atproto.sync.getLatestCommit': {
        const repo = repoOf(q.did)
        if (!repo?.rev) return send(res, 400, { error: 'RepoNotFound', message: 'unknown repo' })
        return send(res, 200, { cid: repo.cid, rev: repo.rev })
      }
      case 'POST /xrpc/com.atproto.sync.requestCrawl': {
        const body = await readBody(req)
        if (body.hostname !== hostname) return send(res, 400, { error: 'InvalidRequest', message: `only ${hostname}` })
        state.crawled = true
        startFirehose()
        return send(res, 200, {})
      }
      case 'POST /control': {
        const body = await readBody(req)
        if (body.hostStatus !== undefined) state.hostStatus = body.hostStatus
        if (body.accountStatus !== undefined) state.accountStatus = body.accountStatus
        if (body.paused !== undefined) state.paused = body.paused
        return send(res, 200, { ok: true })
      }
      case 'GET /control/stats':
        return send(res, 200, { opsIn: state.opsIn, opsVerified: state.opsVerified, commits: state.commits, seq: state.seq, errors: state.errors, repos: Object.fromEntries(state.repos) })
      case 'POST /control/forged-commit': {
        const body = await readBody(req)
        return send(res, 200, await forgedCommit(body.did))
      }
      default:
        return send(res, 404, { error: 'NotFound', message: url.pathname })
    }
  } catch (err) {
    return send(res, 500, { error: 'InternalServerError', message: String(err) })
  }
})

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`)
})
// Stop at once: a firehose waiting to reconnect (the PDS gone) would delay destroy().
const stop = () => {
  server.close()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
