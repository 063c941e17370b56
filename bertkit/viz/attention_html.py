"""A self-contained HTML "head view" of attention, in the spirit of bertviz.

Tokens stand in two columns; a line from token i on the left to token j on the right is drawn
with opacity equal to the attention of i to j in the chosen layer and head. Selectors switch
layer and head, hovering a token shows only its lines, sentence A and B are coloured apart.

Everything (data, style, script) is inline: the file opens offline and can be mailed around.
The weights travel as base64 float32, so the page shows exactly the model's numbers; each drawn
line carries them in `data-from`, `data-to` and `data-weight`, and `window.bertkitHeadView`
exposes `select(layer, head)` and `weights()` for scripts and tests.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bertkit.errors import BertkitError
from bertkit.files import atomic_write_text
from bertkit.viz.stack import as_attention_stack, check_index


def attention_html(
    tokens: Sequence[str],
    attentions: Any,
    path: str | Path,
    *,
    type_ids: Sequence[int] | None = None,
    title: str | None = None,
    layer: int = 0,
    head: int = 0,
) -> Path:
    """Write the head view of `attentions` ([L, A, T, T] or the model's per-layer tuple) to `path`."""
    path = Path(path)
    page = head_view_html(tokens, attentions, type_ids=type_ids, title=title, layer=layer, head=head)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, page)
    return path


def head_view_html(
    tokens: Sequence[str],
    attentions: Any,
    *,
    type_ids: Sequence[int] | None = None,
    title: str | None = None,
    layer: int = 0,
    head: int = 0,
) -> str:
    """The page as a string (see `attention_html`)."""
    stack = as_attention_stack(attentions)  # [L, A, T, T]
    layers, heads, n = stack.shape[0], stack.shape[1], stack.shape[-1]
    if len(tokens) != n:
        raise BertkitError(f"attentions cover {n} tokens but {len(tokens)} tokens were given")
    if type_ids is not None and len(type_ids) != n:
        raise BertkitError(f"got {len(type_ids)} type ids for {n} tokens")
    data = {
        "tokens": [str(t) for t in tokens],
        "typeIds": [int(t) for t in type_ids] if type_ids is not None else [0] * n,
        "layers": layers,
        "heads": heads,
        "layer": check_index(layer, layers, "layer"),
        "head": check_index(head, heads, "head"),
        # little-endian float32, [L, A, T, T] in C order: the exact numbers the model produced
        "weights": base64.b64encode(np.ascontiguousarray(stack, dtype="<f4").tobytes()).decode("ascii"),
    }
    # json inside <script>: escape what could close the tag or start markup
    blob = json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    heading = title or " ".join(t for t in tokens if t not in ("[CLS]", "[SEP]", "[PAD]"))
    return _PAGE.replace("__TITLE__", html.escape(heading)).replace("__DATA__", blob)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>attention: __TITLE__</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 1.2em; color: #222; }
  h1 { font-size: 1.1em; font-weight: 600; }
  .controls { margin: 0.6em 0 1em; display: flex; gap: 1.2em; align-items: center; flex-wrap: wrap; }
  .legend span { padding: 0 0.4em; border-radius: 3px; margin-right: 0.4em; }
  .seg0 { fill: #1f4e9c; background: #dbe6f7; color: #1f4e9c; }
  .seg1 { fill: #b3541e; background: #f8e3d6; color: #b3541e; }
  svg text { font-size: 13px; font-family: ui-monospace, monospace; cursor: default; }
  svg text.focus { font-weight: 700; }
  svg text.value { font-size: 11px; fill: #666; }
  svg rect.tokbg { fill: transparent; }
  svg g.token:hover rect.tokbg { fill: #eee; }
  .hint { color: #666; font-size: 0.9em; }
</style>
</head>
<body>
<h1>__TITLE__</h1>
<div class="controls">
  <label>Layer <select id="layer"></select></label>
  <label>Head <select id="head"></select></label>
  <span class="legend"><span class="seg0">sentence A</span><span class="seg1">sentence B</span></span>
  <span class="hint">left attends to right; line opacity = attention probability; hover a token to focus it</span>
</div>
<svg id="view" xmlns="http://www.w3.org/2000/svg"></svg>
<script type="application/json" id="bertkit-data">__DATA__</script>
<script>
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("bertkit-data").textContent);
  const T = data.tokens.length, L = data.layers, A = data.heads;
  const raw = atob(data.weights);
  const bytes = new Uint8Array(raw.length);
  for (let k = 0; k < raw.length; k++) bytes[k] = raw.charCodeAt(k);
  const view = new DataView(bytes.buffer);
  // attention of token i to token j in (layer, head): [L, A, T, T] little-endian float32
  function weight(layer, head, i, j) {
    return view.getFloat32(4 * (((layer * A + head) * T + i) * T + j), true);
  }

  const NS = "http://www.w3.org/2000/svg";
  const ROW = 20, TOP = 10, COL = 150, GAP = 260;
  const width = 2 * COL + GAP + 70, height = TOP + ROW * T + 10;
  const svg = document.getElementById("view");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  const lines = document.createElementNS(NS, "g");
  lines.setAttribute("id", "lines");
  svg.appendChild(lines);

  function headColour(head) { return "hsl(" + Math.round(360 * head / A) + ", 70%, 42%)"; }
  function y(i) { return TOP + ROW * i + ROW / 2; }

  // the two token columns: left = attending (query), right = attended (key)
  const labels = { left: [], right: [] }, values = { left: [], right: [] };
  for (const side of ["left", "right"]) {
    for (let i = 0; i < T; i++) {
      const g = document.createElementNS(NS, "g");
      g.setAttribute("class", "token");
      const bg = document.createElementNS(NS, "rect");
      bg.setAttribute("class", "tokbg");
      bg.setAttribute("x", side === "left" ? 10 : COL + GAP + 10);
      bg.setAttribute("y", y(i) - ROW / 2);
      bg.setAttribute("width", COL);
      bg.setAttribute("height", ROW);
      const t = document.createElementNS(NS, "text");
      t.textContent = data.tokens[i];
      t.setAttribute("class", "seg" + Math.min(data.typeIds[i], 1));
      t.setAttribute("data-index", i);
      t.setAttribute("data-side", side);
      t.setAttribute("dominant-baseline", "middle");
      if (side === "left") { t.setAttribute("x", COL); t.setAttribute("text-anchor", "end"); }
      else { t.setAttribute("x", COL + GAP + 20); t.setAttribute("text-anchor", "start"); }
      t.setAttribute("y", y(i));
      // the focused token's attention, written beside the other column's tokens on hover
      const v = document.createElementNS(NS, "text");
      v.setAttribute("class", "value");
      v.setAttribute("dominant-baseline", "middle");
      v.setAttribute("y", y(i));
      if (side === "left") { v.setAttribute("x", 10); v.setAttribute("text-anchor", "start"); }
      else { v.setAttribute("x", width - 10); v.setAttribute("text-anchor", "end"); }
      g.appendChild(bg);
      g.appendChild(t);
      g.appendChild(v);
      values[side].push(v);
      g.addEventListener("mouseenter", function () { focus(side, i); });
      g.addEventListener("mouseleave", function () { focus(null, -1); });
      svg.appendChild(g);
      labels[side].push(t);
    }
  }

  const state = { layer: data.layer, head: data.head, focusSide: null, focusIndex: -1 };

  function draw() {
    while (lines.firstChild) lines.removeChild(lines.firstChild);
    const colour = headColour(state.head);
    const x1 = COL + 8, x2 = COL + GAP + 12;
    for (let i = 0; i < T; i++) {
      for (let j = 0; j < T; j++) {
        const w = weight(state.layer, state.head, i, j);
        const line = document.createElementNS(NS, "line");
        line.setAttribute("x1", x1); line.setAttribute("y1", y(i));
        line.setAttribute("x2", x2); line.setAttribute("y2", y(j));
        line.setAttribute("stroke", colour);
        line.setAttribute("stroke-width", 2);
        line.setAttribute("stroke-opacity", w);
        line.setAttribute("data-from", i);
        line.setAttribute("data-to", j);
        line.setAttribute("data-weight", w);
        lines.appendChild(line);
      }
    }
    svg.setAttribute("data-layer", state.layer);
    svg.setAttribute("data-head", state.head);
    applyFocus();
  }

  function focus(side, index) { state.focusSide = side; state.focusIndex = index; applyFocus(); }

  function applyFocus() {
    const attr = state.focusSide === "left" ? "data-from" : "data-to";
    for (const line of lines.childNodes) {
      const shown = state.focusSide === null || Number(line.getAttribute(attr)) === state.focusIndex;
      line.style.display = shown ? "" : "none";
    }
    for (const side of ["left", "right"]) {
      labels[side].forEach(function (t, i) {
        t.classList.toggle("focus", side === state.focusSide && i === state.focusIndex);
      });
      values[side].forEach(function (v, k) {
        // hovering left token i shows i's attention to each right token k, and the reverse
        let text = "";
        if (state.focusSide !== null && state.focusSide !== side) {
          const w = state.focusSide === "left" ? weight(state.layer, state.head, state.focusIndex, k)
                                               : weight(state.layer, state.head, k, state.focusIndex);
          text = w.toFixed(2);
        }
        v.textContent = text;
      });
    }
  }

  const layerSelect = document.getElementById("layer"), headSelect = document.getElementById("head");
  for (let l = 0; l < L; l++) layerSelect.add(new Option(String(l), String(l)));
  for (let h = 0; h < A; h++) headSelect.add(new Option(String(h), String(h)));
  layerSelect.value = String(state.layer);
  headSelect.value = String(state.head);
  layerSelect.addEventListener("change", function () { state.layer = Number(layerSelect.value); draw(); });
  headSelect.addEventListener("change", function () { state.head = Number(headSelect.value); draw(); });

  // for scripts and tests: switch the view, read back the drawn matrix (rows = attending token)
  window.bertkitHeadView = {
    tokens: data.tokens.slice(),
    select: function (layer, head) {
      state.layer = layer; state.head = head;
      layerSelect.value = String(layer); headSelect.value = String(head);
      draw();
    },
    state: function () { return { layer: state.layer, head: state.head }; },
    weights: function () {
      const m = [];
      for (let i = 0; i < T; i++) m.push(new Array(T).fill(null));
      for (const line of lines.childNodes) {
        m[Number(line.getAttribute("data-from"))][Number(line.getAttribute("data-to"))] =
          Number(line.getAttribute("data-weight"));
      }
      return m;
    },
  };
  draw();
})();
</script>
</body>
</html>
"""
