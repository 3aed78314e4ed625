/**
 * Split GGUF models in TypeScript (no native code): scripts/split-gguf.ts writes the fixture llama as 3
 * parts; readModelGguf / describeModel merge them; every broken split is a typed error naming the part.
 */
import assert from 'node:assert/strict'
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { assignParts, splitGguf } from '../../../scripts/split-gguf.js'
import { readGguf } from '../../../src/engine/gguf/gguf-reader.js'
import { readModelGguf } from '../../../src/engine/gguf/model-gguf-reader.js'
import { describeModel } from '../../../src/engine/model-description.js'
import {
  InvalidSplitNameError, NotFirstSplitPartError, SplitPartMismatchError, SplitPartMissingError, SplitPartTruncatedError
} from '../../../src/shared/errors/engine-errors.js'
import type { GgufTensorInfo } from '../../../src/engine/gguf/gguf-reader.js'

const SRC = 'models/stories260k-f32.gguf'
const dir = mkdtempSync(join(tmpdir(), 'exo-split-'))
after(() => { rmSync(dir, { recursive: true, force: true }) })

/** A fresh 3-part split of the fixture in its own folder. */
function split3 (name: string): string[] {
  return splitGguf({ input: SRC, outPrefix: join(dir, name), parts: 3 })
}

/** Overwrites the value of a u16 / i32 split.* key in a part, in place. */
function patchKey (path: string, key: string, value: number): void {
  const b = readFileSync(path)
  const at = b.indexOf(Buffer.from(key, 'utf8'))
  assert.ok(at > 0, `${key} in ${path}`)
  const type = b.readUInt32LE(at + key.length)
  if (type === 2) b.writeUInt16LE(value, at + key.length + 4)
  else b.writeInt32LE(value, at + key.length + 4)
  writeFileSync(path, b)
}

function bytesOf (t: GgufTensorInfo): Buffer {
  return readFileSync(t.path).subarray(t.fileOffset, t.fileOffset + t.bytes)
}

describe('split GGUF: reading', () => {
  it('merges the parts: the same tensors, each at its own part and offset, with the same bytes', () => {
    const paths = split3('ok')
    assert.deepEqual(paths.map((p) => p.slice(dir.length + 1)), ['ok-00001-of-00003.gguf', 'ok-00002-of-00003.gguf', 'ok-00003-of-00003.gguf'])
    const whole = readGguf(SRC)
    const g = readModelGguf(paths[0]!)
    assert.deepEqual(g.parts.map((p) => p.path), paths)
    assert.deepEqual([...g.tensors.keys()], [...whole.tensors.keys()])
    assert.equal(g.parts.reduce((a, p) => a + p.tensorCount, 0), whole.tensors.size)
    assert.ok(g.parts.every((p) => p.tensorCount > 0 && p.dataOffset % 32 === 0))
    const seen = new Set<string>()
    for (const [name, t] of g.tensors) {
      const w = whole.tensors.get(name)!
      assert.deepEqual([t.ne, t.type, t.bytes], [w.ne, w.type, w.bytes], name)
      assert.ok(bytesOf(t).equals(bytesOf(w)), `${name} data`)
      seen.add(t.path)
    }
    assert.equal(seen.size, 3)
    // KV pairs in the first part only; split.* in every part
    const p2 = readGguf(paths[1]!)
    assert.deepEqual([...p2.metadata.keys()], ['split.no', 'split.tensors.count', 'split.count'])
    assert.deepEqual([p2.metadata.get('split.no'), p2.metadata.get('split.count'), p2.metadata.get('split.tensors.count')], [1, 3, whole.tensors.size])
    const p1 = readGguf(paths[0]!)
    assert.deepEqual([...p1.metadata.keys()], [...whole.metadata.keys(), 'split.no', 'split.tensors.count', 'split.count'])
    // the model: same description, file bytes of all parts
    const a = describeModel(paths[0]!).metadata
    const b = describeModel(SRC).metadata
    assert.equal(a.fileBytes, g.parts.reduce((s, p) => s + p.fileBytes, 0))
    assert.deepEqual({ ...a, fileBytes: 0 }, { ...b, fileBytes: 0 })
  })

  it('a metadata-only first part (gguf-split --no-tensor-first-split) and gguf-split\'s --split-max-tensors', () => {
    const paths = splitGguf({ input: SRC, outPrefix: join(dir, 'nt'), maxTensors: 20, noTensorFirstSplit: true })
    const g = readModelGguf(paths[0]!)
    assert.equal(g.parts[0]!.tensorCount, 0)
    assert.deepEqual(g.parts.slice(1).map((p) => p.tensorCount), [20, 20, 8])
    assert.equal(describeModel(paths[0]!).metadata.nLayers, 5)
  })

  it('assignParts: even spread over exactly N parts, or gguf-split\'s tensor / size limits', () => {
    const t = (bytes: number): GgufTensorInfo => ({ name: String(bytes), ne: [bytes], type: 0, path: '', fileOffset: 0, bytes })
    const ts = [1, 2, 3, 4, 5, 6, 7].map((i) => t(i * 32))
    assert.deepEqual(assignParts(ts, { parts: 3 }).map((g) => g.length), [2, 2, 3])
    assert.deepEqual(assignParts(ts, { maxTensors: 3 }).map((g) => g.length), [3, 3, 1])
    assert.deepEqual(assignParts(ts, { maxBytes: 7 * 32 }).map((g) => g.map((x) => x.bytes / 32)), [[1, 2, 3], [4], [5], [6], [7]])
    assert.throws(() => assignParts(ts, { maxBytes: 16 }), /0 tensors/)
    assert.throws(() => assignParts(ts, { parts: 8 }), /cannot spread/)
  })
})

describe('split GGUF: broken splits are typed errors naming the part', () => {
  it('missing part', () => {
    const paths = split3('missing')
    rmSync(paths[1]!)
    assert.throws(() => describeModel(paths[0]!), (e: unknown) => e instanceof SplitPartMissingError && e.partPath === paths[1] && /part 2 of 3/.test(e.message))
  })

  it('truncated part: tensor data cut, or the header cut', () => {
    const paths = split3('trunc')
    const p3 = readGguf(paths[2]!, { checkData: false })
    const end = Math.max(...[...p3.tensors.values()].map((t) => t.fileOffset + t.bytes))
    truncateSync(paths[2]!, end - 1)
    assert.throws(() => describeModel(paths[0]!), (e: unknown) => e instanceof SplitPartTruncatedError && e.partPath === paths[2])
    truncateSync(paths[2]!, 40)
    assert.throws(() => describeModel(paths[0]!), (e: unknown) => e instanceof SplitPartTruncatedError && e.partPath === paths[2])
  })

  it('a part with the wrong split.count', () => {
    const paths = split3('count')
    patchKey(paths[2]!, 'split.count', 4)
    assert.throws(() => describeModel(paths[0]!), (e: unknown) => e instanceof SplitPartMismatchError && e.partPath === paths[2] && /split\.count is 4, expected 3/.test(e.message))
  })

  it('a part with the wrong split.no (part 3 saved as part 2)', () => {
    const paths = split3('no')
    copyFileSync(paths[2]!, paths[1]!)
    assert.throws(() => describeModel(paths[0]!), (e: unknown) => e instanceof SplitPartMismatchError && e.partPath === paths[1] && /split\.no is 2, expected 1/.test(e.message))
  })

  it('split.tensors.count: one part disagrees, or all agree but the parts hold a different number', () => {
    const paths = split3('tc')
    patchKey(paths[1]!, 'split.tensors.count', 47)
    assert.throws(() => describeModel(paths[0]!), (e: unknown) => e instanceof SplitPartMismatchError && e.partPath === paths[1] && /split\.tensors\.count is 47, expected 48/.test(e.message))
    for (const p of paths) patchKey(p, 'split.tensors.count', 49)
    assert.throws(() => describeModel(paths[0]!), (e: unknown) => e instanceof SplitPartMismatchError && e.partPath === paths[0] && /49 but the 3 parts hold 48/.test(e.message))
  })

  it('the model given by a part that is not split.no 0', () => {
    const paths = split3('notfirst')
    assert.throws(() => describeModel(paths[1]!), (e: unknown) => e instanceof NotFirstSplitPartError && e.partPath === paths[1] && e.splitNo === 1 && e.splitCount === 3)
  })

  it('a first part renamed away from <prefix>-00001-of-00003.gguf', () => {
    const paths = split3('renamed')
    const other = join(dir, 'renamed.gguf')
    renameSync(paths[0]!, other)
    assert.throws(() => describeModel(other), (e: unknown) => e instanceof InvalidSplitNameError && e.partPath === other)
  })

  it('a part that is not a GGUF', () => {
    const paths = split3('junk')
    writeFileSync(paths[1]!, 'not a gguf file at all')
    assert.throws(() => describeModel(paths[0]!), (e: unknown) => e instanceof SplitPartMismatchError && e.partPath === paths[1])
  })
})
