/** The ggml type table (generated from the pinned ggml; checked against it at startup) as pure data. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { GGML_TYPE_COUNT, GGML_TYPE_TABLE } from '../../../src/engine/gguf/ggml-type-table.js'
import { GGML_TYPE_TRAITS, SUPPORTED_WEIGHT_TYPES, ggmlTypeByName, ggmlTypeName, rowBytes } from '../../../src/engine/gguf/ggml-types.js'
import { SUPPORTED_TENSOR_TYPES } from '../../../src/engine/supported.js'

/** the types issue 10 names (every type the pinned ggml CPU backend has kernels for) */
const REQUIRED = ['f32', 'f16', 'bf16', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q2_K', 'q3_K', 'q4_K', 'q5_K', 'q6_K',
  'iq1_s', 'iq1_m', 'iq2_xxs', 'iq2_xs', 'iq2_s', 'iq3_xxs', 'iq3_s', 'iq4_nl', 'iq4_xs', 'tq1_0', 'tq2_0', 'mxfp4']

describe('ggml type table', () => {
  it('ids are unique, below GGML_TYPE_COUNT, in order; names unique', () => {
    const ids = GGML_TYPE_TABLE.map((r) => r[0])
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b))
    assert.equal(new Set(ids).size, ids.length)
    assert.ok(ids.every((id) => Number.isInteger(id) && id >= 0 && id < GGML_TYPE_COUNT))
    assert.equal(new Set(GGML_TYPE_TABLE.map((r) => r[1].toLowerCase())).size, ids.length)
  })

  it('the engine accepts every required type, and no integer or matmul-operand-only type', () => {
    for (const name of REQUIRED) {
      const id = ggmlTypeByName(name)
      assert.ok(id !== undefined && SUPPORTED_WEIGHT_TYPES.has(id), name)
      assert.equal(ggmlTypeName(id), name)
    }
    for (const name of ['i8', 'i16', 'i32', 'i64', 'f64', 'q8_1', 'q8_K']) assert.ok(!SUPPORTED_WEIGHT_TYPES.has(ggmlTypeByName(name)!), name)
    assert.deepEqual(new Set(SUPPORTED_TENSOR_TYPES), new Set([...SUPPORTED_WEIGHT_TYPES].map(ggmlTypeName)))
  })

  it('removed and unknown ids have no traits', () => {
    for (const id of [4, 5, 31, 32, 33, 36, 37, 38, GGML_TYPE_COUNT, 99, -1]) {
      assert.equal(GGML_TYPE_TRAITS.get(id), undefined, String(id))
      assert.equal(ggmlTypeName(id), `type#${id}`)
    }
    assert.equal(ggmlTypeByName('q4_2'), undefined)
  })

  it('row bytes follow the block layout (whole blocks only)', () => {
    assert.equal(rowBytes(ggmlTypeByName('q4_K')!, 512), 2 * 144)
    assert.equal(rowBytes(ggmlTypeByName('iq2_xxs')!, 256), 66)
    assert.equal(rowBytes(ggmlTypeByName('mxfp4')!, 64), 2 * 17)
    assert.equal(rowBytes(ggmlTypeByName('bf16')!, 3), 6)
    assert.equal(rowBytes(ggmlTypeByName('q4_K')!, 128), undefined)
    assert.equal(rowBytes(4, 32), undefined)
  })
})
