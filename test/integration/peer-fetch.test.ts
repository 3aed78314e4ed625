import assert from 'node:assert/strict'
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { clusterState, waitFor } from './helpers/mesh-node-process.js'
import { MODEL_PATH, MODEL, FILE_BYTES, CHUNK, PROMPT, start, stopAll, agreedReadyPlan, complete, allocatedBytes, neededChunks } from './helpers/peer-fetch-cluster.js'
import { budgetForSplitMiB } from './helpers/split-budget.js'
import { referenceGreedy } from '../model/helpers/completion-reference.js'

/**
 * Peer fetch with real node processes on 127.0.0.1 (protocols/weights.md): nodes started with
 * `--model ID` of a model only their peers hold fetch the header and exactly their stage's chunks,
 * and the pipeline's greedy text equals llama.cpp's.
 */
after(stopAll)

describe('peer fetch across three processes', () => {
  it('one holder, two nodes without the file: a 3-stage plan, each fetcher holds only its layers + header, greedy text equals llama.cpp on every port', async () => {
    const budget = budgetForSplitMiB(MODEL_PATH, MODEL, 3).mib
    const reference = referenceGreedy(MODEL_PATH, PROMPT, 16)
    const holder = await start('holder', MODEL_PATH, budget, [])
    const [b, c] = await Promise.all([start('fetch-b', MODEL, budget, [holder.node.p2pAddr]), start('fetch-c', MODEL, budget, [holder.node.p2pAddr])])
    const trio = [holder.node, b.node, c.node]
    const plan = await waitFor('a ready 3-stage plan agreed by all', async () => agreedReadyPlan(await Promise.all(trio.map(clusterState)), 3), 50_000, 200)
    const header = Number(/headerBytes":(\d+)/.exec(b.node.stderr)?.[1] ?? NaN)
    assert.ok(header > 0, 'the fetcher logs the manifest')
    for (const f of [b, c]) {
      const stage = plan.stages.find((s) => s.peerId === f.node.peerId)!
      assert.ok(stage.fetch !== undefined && stage.fetch.bytes > 0, `${f.node.name}'s stage says it fetches`)
      const path = join(f.dataDir, 'models', '.partial', `${MODEL}.gguf`)
      assert.equal(statSync(path).size, FILE_BYTES)
      const allocated = allocatedBytes(path)
      const bound = neededChunks(stage.start, stage.end, header) * CHUNK
      process.stderr.write(`# ${f.node.name} stage [${stage.start}, ${stage.end}): ${allocated} bytes on disk of ${FILE_BYTES} (bound ${bound}, stage weights ${stage.fetch.bytes})\n`)
      assert.ok(allocated <= bound + 65536, `${f.node.name}: ${allocated} bytes allocated > ${bound}`)
      assert.ok(allocated >= stage.fetch.bytes, `${f.node.name}: ${allocated} bytes allocated < its ${stage.fetch.bytes} bytes of weights`)
      assert.ok(allocated < FILE_BYTES * 0.75, `${f.node.name} holds ${allocated} of ${FILE_BYTES} bytes`)
    }
    const expected = (await reference).text
    assert.ok(expected.length > 0)
    // LlamaCompletion drops the leading space of the first generated piece (SentencePiece detokenizes a
    // sequence's first token without it); our first stage keeps it, as the continuation of the prompt
    for (const n of trio) assert.equal((await complete(n, 16)).replace(/^ /, ''), expected.replace(/^ /, ''), `text from ${n.name}`)
  })
})
