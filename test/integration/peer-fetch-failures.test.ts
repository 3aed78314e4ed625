import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { clusterState, stopProcess, waitFor } from './helpers/mesh-node-process.js'
import { MODEL_PATH, MODEL, PROMPT, running, start, stopAll, agreedReadyPlan, complete } from './helpers/peer-fetch-cluster.js'
import { budgetForSplitMiB } from './helpers/split-budget.js'
import { referenceGreedy } from '../model/helpers/completion-reference.js'

/**
 * Peer fetch with real node processes on 127.0.0.1 (protocols/weights.md): nodes started with
 * `--model ID` of a model only their peers hold fetch the header and exactly their stage's chunks,
 * and the pipeline's greedy text equals llama.cpp's — with a tampering holder and a holder killed mid-fetch.
 */
after(stopAll)

describe('peer fetch when holders fail', () => {
  it('a holder that serves tampered bytes is dropped, the fetch completes from the honest holder, and the tamperer keeps serving its stage', async () => {
    await Promise.all(running.splice(0).map(async (n) => { await stopProcess(n) }))
    const budget = budgetForSplitMiB(MODEL_PATH, MODEL, 3).mib
    const reference = referenceGreedy(MODEL_PATH, PROMPT, 16)
    const honest = await start('honest', MODEL_PATH, budget, [])
    const tamper = await start('tamper', MODEL_PATH, budget, [honest.node.p2pAddr], { env: { EXO_P2P_TEST_TAMPER_WEIGHTS: '1' } })
    // the fetcher joins once both holders are known, so it asks both
    await waitFor('holders see each other', async () => (await clusterState(honest.node)).members.length === 2 ? true : undefined, 20_000)
    const f = await start('fetcher', MODEL, budget, [honest.node.p2pAddr, tamper.node.p2pAddr])
    const trio = [honest.node, tamper.node, f.node]
    await waitFor('a ready 3-stage plan agreed by all', async () => agreedReadyPlan(await Promise.all(trio.map(clusterState)), 3), 50_000, 200)
    assert.match(f.node.stderr, /weights holder dropped for this fetch/)
    assert.ok(f.node.stderr.includes(tamper.node.peerId), 'the dropped holder is the tampering one')
    const expected = (await reference).text.replace(/^ /, '')
    for (const n of trio) assert.equal((await complete(n, 16)).replace(/^ /, ''), expected, `text from ${n.name}`)
  })

  it('the holder killed mid-fetch: the fetch completes from the second holder', async () => {
    await Promise.all(running.splice(0).map(async (n) => { await stopProcess(n) }))
    // the holders cannot run the model without a third node; the fetcher can alone, so the plan is the
    // fetcher alone (a single node is fastest) and it fetches the whole file
    const budget = budgetForSplitMiB(MODEL_PATH, MODEL, 3).mib
    const reference = referenceGreedy(MODEL_PATH, PROMPT, 16)
    const h1 = await start('h1', MODEL_PATH, budget, [])
    const h2 = await start('h2', MODEL_PATH, budget, [h1.node.p2pAddr])
    await waitFor('holders see each other', async () => (await clusterState(h1.node)).members.length === 2 ? true : undefined, 20_000)
    // 8 MB/s: 56 MB take ~7 s, long enough to kill a holder in the middle; killed before 60 %, ≥ 2.8 s of
    // fetch are left, so the plan seen after the kill still shows the fetch (a loaded machine polls slowly)
    const f = await start('slow', MODEL, 2048, [h1.node.p2pAddr, h2.node.p2pAddr], { extraArgs: ['--fetch-max-rate', '8'] })
    const progress = async (): Promise<{ verifiedBytes: number, targetBytes: number } | undefined> =>
      (await clusterState(f.node)).members.find((m) => m.peerId === f.node.peerId)?.partials?.[0]
    await waitFor('the fetcher is mid-fetch', async () => { const p = await progress(); return p !== undefined && p.verifiedBytes > p.targetBytes * 0.2 && p.verifiedBytes < p.targetBytes * 0.6 ? p : undefined }, 45_000, 100)
    await stopProcess(h1.node, 'SIGKILL')
    running.splice(running.indexOf(h1.node), 1)
    const duo = [h2.node, f.node]
    const plan = await waitFor('a ready plan of the fetcher alone', async () => agreedReadyPlan(await Promise.all(duo.map(clusterState)), 1), 55_000, 200)
    assert.ok(plan.stages.some((s) => s.peerId === f.node.peerId && s.fetch !== undefined))
    const expected = (await reference).text.replace(/^ /, '')
    for (const n of duo) assert.equal((await complete(n, 16)).replace(/^ /, ''), expected, `text from ${n.name}`)
    // it fetched every layer: the copy was checked whole, promoted into the store, and is announced as held
    await waitFor('the fetcher announces the model as held', async () => (await clusterState(f.node)).members.find((m) => m.peerId === f.node.peerId)?.models.some((m) => m.id === MODEL) === true ? true : undefined, 20_000, 200)
    assert.ok(readFileSync(join(f.dataDir, 'models', `${MODEL}.gguf`)).equals(readFileSync(MODEL_PATH)), 'the promoted file is the model')
    assert.deepEqual(readdirSync(join(f.dataDir, 'models', '.partial')), [], 'no partial copy left')
  })
})
