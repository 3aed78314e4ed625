import assert from 'node:assert/strict'
import { mkdirSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { after, describe, it } from 'node:test'
import { readGguf } from '../../src/engine/gguf/gguf-reader.js'
import { shardFileRanges } from '../../src/engine/index.js'
import { modelIdOfPath } from '../../src/node/model-registry.js'
import { clusterState, waitFor } from './helpers/mesh-node-process.js'
import { MODEL_PATH, CHUNK, PROMPT, start, stopAll, agreedReadyPlan, complete, allocatedBytes } from './helpers/peer-fetch-cluster.js'
import { budgetForSplitMiB } from './helpers/split-budget.js'
import { referenceGreedy } from '../model/helpers/completion-reference.js'
import { splitGguf } from '../../scripts/split-gguf.js'

/**
 * Peer fetch with real node processes on 127.0.0.1 (protocols/weights.md), of a model split into 3 GGUF
 * parts: nodes started with `--model ID` of a model only their peer holds fetch every part's header and
 * exactly their stage's chunks from the parts holding its tensors, and the pipeline's greedy text equals
 * llama.cpp's. (The single-file case runs in peer-fetch-failures.test.ts.)
 */
after(stopAll)

const dir = join(tmpdir(), `peer-fetch-split-${basename(MODEL_PATH, '.gguf')}`)
mkdirSync(dir, { recursive: true })
const PARTS = splitGguf({ input: MODEL_PATH, outPrefix: join(dir, 'split3'), parts: 3 })
const SPLIT = modelIdOfPath(PARTS[0]!)
const PART_BYTES = PARTS.map((p) => statSync(p).size)

/** Chunks, summed over the parts, that stage [start, end) needs: every part's header and its tensors' ranges. */
function neededChunks (start: number, end: number): number {
  const sets = PARTS.map((p) => { const s = new Set<number>(); for (let c = 0; c * CHUNK < readGguf(p, { checkData: false }).dataOffset; c++) s.add(c); return s })
  for (const r of shardFileRanges(PARTS[0]!, { start, end })) {
    const set = sets[PARTS.indexOf(r.path)]!
    for (let c = Math.floor(r.offset / CHUNK); c <= Math.floor((r.offset + r.bytes - 1) / CHUNK); c++) set.add(c)
  }
  return sets.reduce((a, s) => a + s.size, 0)
}

describe('peer fetch of a 3-part split model across three processes', () => {
  it('one holder, two nodes without the files: a 3-stage plan, each fetcher holds only its layers + the headers, greedy text equals llama.cpp on every port', async () => {
    const budget = budgetForSplitMiB(MODEL_PATH, modelIdOfPath(MODEL_PATH), 3).mib
    const reference = referenceGreedy(MODEL_PATH, PROMPT, 16)
    const holder = await start('holder', PARTS[0]!, budget, [])
    const [b, c] = await Promise.all([start('fetch-b', SPLIT, budget, [holder.node.p2pAddr]), start('fetch-c', SPLIT, budget, [holder.node.p2pAddr])])
    const trio = [holder.node, b.node, c.node]
    const plan = await waitFor('a ready 3-stage plan agreed by all', async () => agreedReadyPlan(await Promise.all(trio.map(clusterState)), 3), 60_000, 200)
    for (const f of [b, c]) {
      const stage = plan.stages.find((s) => s.peerId === f.node.peerId)!
      assert.ok(stage.fetch !== undefined && stage.fetch.bytes > 0, `${f.node.name}'s stage says it fetches`)
      const copies = PARTS.map((p) => join(f.dataDir, 'models', '.partial', basename(p)))
      assert.deepEqual(copies.map((p) => statSync(p).size), PART_BYTES, 'a full-size sparse copy of every part')
      const allocated = copies.reduce((a, p) => a + allocatedBytes(p), 0)
      const bound = neededChunks(stage.start, stage.end) * CHUNK
      const total = PART_BYTES.reduce((a, n) => a + n, 0)
      process.stderr.write(`# ${f.node.name} stage [${stage.start}, ${stage.end}): ${allocated} bytes on disk of ${total} (bound ${bound}, stage weights ${stage.fetch.bytes})\n`)
      assert.ok(allocated <= bound + 3 * 65536, `${f.node.name}: ${allocated} bytes allocated > ${bound}`)
      assert.ok(allocated >= stage.fetch.bytes, `${f.node.name}: ${allocated} bytes allocated < its ${stage.fetch.bytes} bytes of weights`)
      assert.ok(allocated < total * 0.8, `${f.node.name} holds ${allocated} of ${total} bytes`)
      assert.match(f.node.stderr, /"viaBulk":[1-9]/, `${f.node.name} fetched over the bulk path (protocols/weights.md 1.1.0)`)
    }
    const expected = (await reference).text
    assert.ok(expected.length > 0)
    // LlamaCompletion drops the leading space of the first generated piece (SentencePiece detokenizes a
    // sequence's first token without it); our first stage keeps it, as the continuation of the prompt
    for (const n of trio) assert.equal((await complete(n, 16, SPLIT)).replace(/^ /, ''), expected.replace(/^ /, ''), `text from ${n.name}`)
  })
})
