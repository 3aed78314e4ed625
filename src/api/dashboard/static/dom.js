// Tiny DOM helpers: build elements with text content only (never innerHTML), so peer-supplied
// strings (node names, model ids, generated text) cannot inject markup.
const SVG_NS = 'http://www.w3.org/2000/svg'

/** @param {Element} el @param {Record<string, unknown>} props */
function applyProps (el, props) {
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue
    if (k === 'class') el.setAttribute('class', String(v))
    else if (k === 'text') el.textContent = String(v)
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), /** @type {EventListener} */ (v))
    else el.setAttribute(k, v === true ? '' : String(v))
  }
}

/** @param {Element} el @param {unknown[]} children */
function append (el, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue
    el.append(c instanceof Node ? c : document.createTextNode(String(c)))
  }
}

/** HTML element. @param {string} tag @param {Record<string, unknown>} [props] @param {...unknown} children */
export function h (tag, props = {}, ...children) {
  const el = document.createElement(tag)
  applyProps(el, props)
  append(el, children)
  return el
}

/** SVG element. @param {string} tag @param {Record<string, unknown>} [props] @param {...unknown} children */
export function s (tag, props = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag)
  applyProps(el, props)
  append(el, children)
  return el
}

/** Replaces the children of `el`. @param {Element} el @param {...unknown} children */
export function render (el, ...children) {
  el.replaceChildren()
  append(el, children)
}
