"""The HTML player and the notebook display. A page or a notebook holds the animation once, as an animated image: a
notebook the GIF of the .gif export, a page the same frames as an APNG (`ApngStream`: zlib codes them ~2x faster than
GIF's LZW). The image plays wherever scripts do not run (untrusted notebooks, GitHub, nbviewer, sanitised HTML); where
they do, a small script decodes that same image and steps through its frames on a canvas (play/pause, step, slider,
loop). No network, no other copy of the frames."""
from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import warnings

import matplotlib as mpl
import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from .gif import HOLD_LAST, ApngStream, check_gif_fps, gif_of
from .models import flat_names

__all__ = ['FitAnimation', 'animation_of']  # the rest is for the writers and notebook displays

# The player: `fastfitPlayer(root)` mounts itself on a `.ff-player` element holding the image (`img.ff-gif`: a GIF, or
# fastfit's APNG), its frame counts and fps (data attributes), a canvas and the controls. It decodes the image (LZW, or
# zlib's inflate) once, keeps a snapshot of the composed frame every 16 image frames, and paints only the box that
# changed when stepping forward. It reads the APNGs fastfit writes (palette, one transparent index, unfiltered rows).
# Reading aids (`data-marks`, `frame_marks`): hovering or tapping near where a frame's marker is (the loss curve's
# point, the path's point on the loss surface) jumps to that frame; the frame's parameters show as text to copy.
# Keys: where the player has the focus, or was clicked last, it takes space and the arrow keys before the page does. A
# notebook listens on the document, Notebook 7 before the event reaches the player: so the player listens on the
# window, in the capture phase, and stops the keys it takes there; arrows on the slider are kept from the notebook and
# left to the slider (it steps itself). `data-lm-suppress-shortcuts` is JupyterLab's own opt-out, set too. A player
# paused on frame 1 says "press play" (beside its controls, covering nothing) until it is played or stepped.
_JS = r"""
function fastfitPlayer(root) {
  const $ = c => root.querySelector('.ff-' + c);
  if (!$('controls')) $('gif').insertAdjacentHTML('afterend', FF_CONTROLS);
  const img = $('gif'), canvas = $('canvas'), slider = $('slider'), label = $('label'), loop = $('loop');
  const counts = JSON.parse(root.dataset.counts), fps = +root.dataset.fps;
  const bin = atob(img.src.slice(img.src.indexOf(',') + 1)), b = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) b[i] = bin.charCodeAt(i);
  const frames = [];  // {x, y, w, h, trans, ct, pix}: each frame's box, its transparent index, colours, indices
  let W, H;
  function lzw(min, data, n) {
    const out = new Uint8Array(n), clear = 1 << min, eoi = clear + 1;
    const prefix = new Uint16Array(4096), suffix = new Uint8Array(4096), stack = new Uint8Array(4097);
    for (let i = 0; i < clear; i++) suffix[i] = i;
    let size = min + 1, mask = (1 << size) - 1, next = eoi + 1, old = -1, first = 0, acc = 0, bits = 0, q = 0, o = 0;
    while (o < n) {
      while (bits < size) { if (q >= data.length) return out; acc |= data[q++] << bits; bits += 8; }
      const code = acc & mask; acc >>>= size; bits -= size;
      if (code === clear) { size = min + 1; mask = (1 << size) - 1; next = eoi + 1; old = -1; continue; }
      if (code === eoi) break;
      if (old < 0) { out[o++] = code; old = first = code; continue; }
      let c = code, sp = 0;
      if (code >= next) { stack[sp++] = first; c = old; }
      while (c >= clear) { stack[sp++] = suffix[c]; c = prefix[c]; }
      stack[sp++] = first = c;
      while (sp && o < n) out[o++] = stack[--sp];
      if (next < 4096) { prefix[next] = old; suffix[next] = first; next++;
        if (next > mask && size < 12) { size++; mask = (1 << size) - 1; } }
      old = code;
    }
    return out;
  }
  function inflate(src, n) {  // a zlib stream (RFC 1950 and 1951) -> its n bytes; the Adler-32 is not checked
    const out = new Uint8Array(n), L = src.length, bad = m => { throw new Error('inflate: ' + m); };
    if (L < 2 || (src[0] & 15) !== 8 || src[0] >> 4 > 7 || (src[0] << 8 | src[1]) % 31 || src[1] & 32) bad('bad zlib header');
    const LB = new Uint16Array(29), LX = new Uint8Array(29), DB = new Uint16Array(30), DX = new Uint8Array(30);
    for (let i = 0, b = 3; i < 29; b += 1 << LX[i++]) { LX[i] = i < 8 || i > 27 ? 0 : (i >> 2) - 1; LB[i] = i > 27 ? 258 : b; }
    for (let i = 0, b = 1; i < 30; b += 1 << DX[i++]) { DX[i] = i < 4 ? 0 : (i >> 1) - 1; DB[i] = b; }
    let q = 2, acc = 0, nb = 0, o = 0, fin = 0;  // input byte, bit buffer (LSB first) and its bit count, output byte
    const need = k => { while (nb < k) { if (q >= L) bad('input ends early'); acc |= src[q++] << nb; nb += 8; } };
    const get = k => { need(k); const v = acc & (1 << k) - 1; acc >>>= k; nb -= k; return v; };
    function table(lens) {  // canonical Huffman code -> lookup by the next `max` bits: entry = symbol << 4 | length
      const count = new Uint16Array(16), next = new Uint16Array(16); let max = 0, left = 1;
      for (const l of lens) { count[l]++; if (l > max) max = l; } count[0] = 0;  // (length 0: an unused symbol)
      for (let l = 1, code = 0; l < 16; l++) {
        if ((left = 2 * left - count[l]) < 0) bad('over-subscribed code lengths');
        next[l] = code = (code + count[l - 1]) << 1; }
      if (left && max > 1) bad('incomplete code lengths');  // as zlib: only a lone 1-bit code (or none) may be incomplete
      const t = new Uint32Array(1 << max);
      for (let s = 0; s < lens.length; s++) {
        const l = lens[s]; let c = next[l]++, r = 0;  // the code, bit-reversed: codes are read most significant bit first
        for (let i = 0; i < l; i++, c >>= 1) r = r << 1 | c & 1;
        if (l) for (; r < t.length; r += 1 << l) t[r] = s << 4 | l; }
      return t;
    }
    const sym = t => {  // the next symbol of code t; an entry 0 is a code that is not in t
      need(31 - Math.clz32(t.length)); const e = t[acc & t.length - 1];
      if (!e) bad('bad code'); acc >>>= e & 15; nb -= e & 15; return e >>> 4; };
    while (!fin) {
      fin = get(1); const type = get(2);
      if (type === 3) bad('bad block type');
      if (type === 0) {  // stored: drop the bits to the byte boundary, give back the whole bytes held, then copy
        q -= nb >> 3; acc = nb = 0;
        if (q + 4 > L) bad('input ends early');
        const len = src[q] | src[q + 1] << 8;
        if (len !== (~(src[q + 2] | src[q + 3] << 8) & 0xFFFF)) bad('bad stored block length');
        if ((q += 4) + len > L) bad('input ends early');
        if (o + len > n) bad('output past n'); out.set(src.subarray(q, q += len), o); o += len; continue;
      }
      let lens, nlit = 288;  // the code lengths of the literal/length code, then those of the distance code
      if (type === 1) lens = new Uint8Array(320).fill(8).fill(9, 144, 256).fill(7, 256, 280).fill(5, 288);  // fixed codes
      else {  // dynamic: the code lengths, themselves Huffman-coded with runs (16: repeat the last, 17, 18: zeros)
        nlit = get(5) + 257; const ndist = get(5) + 1, ncl = get(4) + 4, cl = new Uint8Array(19);
        for (let i = 0; i < ncl; i++) cl[[16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15][i]] = get(3);
        const ct = table(cl); lens = new Uint8Array(nlit + ndist);
        for (let i = 0; i < lens.length;) {
          const s = sym(ct);
          if (s < 16) { lens[i++] = s; continue; }
          if (s === 16 && !i) bad('repeat with no previous length');
          const v = s === 16 ? lens[i - 1] : 0, r = s === 16 ? 3 + get(2) : s === 17 ? 3 + get(3) : 11 + get(7);
          if (i + r > lens.length) bad('too many code lengths');
          lens.fill(v, i, i += r);
        }
      }
      const lit = table(lens.subarray(0, nlit)), dist = table(lens.subarray(nlit));
      for (;;) {  // literals, back-references (length, distance), up to the end of the block (256)
        let s = sym(lit);
        if (s < 256) { if (o >= n) bad('output past n'); out[o++] = s; continue; }
        if (s === 256) break;
        if ((s -= 257) > 28) bad('bad length code');
        const len = LB[s] + get(LX[s]), d = sym(dist);
        if (d > 29) bad('bad distance code');
        const back = DB[d] + get(DX[d]);
        if (back > o) bad('distance too far back');
        if (o + len > n) bad('output past n');
        if (back === 1) out.fill(out[o - 1], o, o += len);  // a run: all of Z_RLE's back-references
        else for (const e = o + len; o < e; o++) out[o] = out[o - back];
      }
    }
    if (o !== n) bad(`output ends at ${o} of ${n} bytes`);
    return out;
  }
  function gif() {
    W = b[6] | b[7] << 8; H = b[8] | b[9] << 8;
    let p = 13, gct = null, trans = -1;
    if (b[10] & 0x80) { gct = b.subarray(p, p + (3 << ((b[10] & 7) + 1))); p += gct.length; }
    while (p < b.length) {
      const t = b[p++];
      if (t === 0x21) {
        if (b[p] === 0xF9) trans = b[p + 2] & 1 ? b[p + 5] : -1;
        p++; while (b[p]) p += b[p] + 1; p++;
      } else if (t === 0x2C) {
        const x = b[p] | b[p + 1] << 8, y = b[p + 2] | b[p + 3] << 8, w = b[p + 4] | b[p + 5] << 8, h = b[p + 6] | b[p + 7] << 8;
        const f = b[p + 8]; p += 9;
        let ct = gct;
        if (f & 0x80) { ct = b.subarray(p, p + (3 << ((f & 7) + 1))); p += ct.length; }
        const min = b[p++];
        let len = 0;
        for (let q = p; b[q]; q += b[q] + 1) len += b[q];
        const data = new Uint8Array(len);
        for (let o = 0; b[p]; p += b[p] + 1) { data.set(b.subarray(p + 1, p + 1 + b[p]), o); o += b[p]; }
        p++;
        frames.push({x, y, w, h, trans, ct, pix: lzw(min, data, w * h)});
        trans = -1;
      } else break;
    }
  }
  function apng() {  // fastfit's own APNG: palette colours, one transparent index, rows unfiltered
    const u32 = q => (b[q] << 24 | b[q + 1] << 16 | b[q + 2] << 8 | b[q + 3]) >>> 0;
    W = u32(16); H = u32(20);
    let ct = null, trans = -1, fc = null, parts = [];
    function push() {
      if (!fc) return;
      const data = new Uint8Array(parts.reduce((n, d) => n + d.length, 0));
      parts.reduce((o, d) => { data.set(d, o); return o + d.length; }, 0);
      const raw = inflate(data, fc.h * (fc.w + 1)), pix = new Uint8Array(fc.w * fc.h);
      for (let r = 0; r < fc.h; r++) {
        if (raw[r * (fc.w + 1)]) throw new Error('fastfit player: a PNG row filter it does not read');
        pix.set(raw.subarray(r * (fc.w + 1) + 1, (r + 1) * (fc.w + 1)), r * fc.w);
      }
      frames.push({...fc, ct, pix}); fc = null; parts = [];
    }
    for (let q = 8; q + 8 <= b.length;) {
      const n = u32(q), type = String.fromCharCode(...b.subarray(q + 4, q + 8)), d = b.subarray(q + 8, q + 8 + n);
      if (type === 'PLTE') ct = d;
      else if (type === 'tRNS') trans = d.indexOf(0);
      else if (type === 'fcTL') {  // its box; blend 'over' (d[25]): the transparent index keeps the frame below
        push(); fc = {w: u32(q + 12), h: u32(q + 16), x: u32(q + 20), y: u32(q + 24), trans: d[25] ? trans : -1}; }
      else if (type === 'IDAT' || type === 'fdAT') parts.push(type === 'IDAT' ? d : d.subarray(4));
      q += 12 + n;
    }
    push();
  }
  b[0] === 0x89 ? apng() : gif();  // a page embeds an APNG, a notebook a GIF
  const of = [];  // the image frame showing each animation frame
  counts.forEach((c, g) => { for (let j = 0; j < c; j++) of.push(g); });
  // checked before it takes over: an image it cannot step through (a still PNG, counts that are not its frames') stays up
  if (!frames.length || frames.length !== counts.length)
    throw new Error(`fastfit player: the image holds ${frames.length} frames it reads, data-counts ${counts.length}`);
  const ctx = canvas.getContext('2d'), im = ctx.createImageData(W, H), cur = new Uint8Array(W * H), snaps = [];
  let g = -1;
  function apply(fr) {
    for (let r = 0; r < fr.h; r++) for (let c = 0; c < fr.w; c++) {
      const v = fr.pix[r * fr.w + c];
      if (v !== fr.trans) cur[(fr.y + r) * W + fr.x + c] = v;
    }
  }
  function paint(x, y, w, h, ct) {
    for (let r = y; r < y + h; r++) for (let c = x; c < x + w; c++) {
      const v = cur[r * W + c] * 3, o = (r * W + c) * 4;
      im.data[o] = ct[v]; im.data[o + 1] = ct[v + 1]; im.data[o + 2] = ct[v + 2]; im.data[o + 3] = 255;
    }
    ctx.putImageData(im, 0, 0, x, y, w, h);
  }
  for (let j = 0; j < frames.length; j++) { if (j % 16 === 0) snaps.push(cur.slice()); apply(frames[j]); }
  function seek(t) {
    if (t === g + 1) { apply(frames[t]); g = t; const f = frames[t]; paint(f.x, f.y, f.w, f.h, f.ct); return; }
    if (t !== g) {
      let s = t - t % 16;
      if (g >= s && g < t) s = g + 1; else cur.set(snaps[s / 16]);
      for (let j = s; j <= t; j++) apply(frames[j]);
      g = t; paint(0, 0, W, H, frames[t].ct);
    }
  }
  const marks = root.dataset.marks ? JSON.parse(root.dataset.marks) : {pts: [], params: []};
  const params = $('params');
  let i = 0, timer = null, hint = $('hint'), end = 0;  // end: when the last frame was shown (looping waits FF_HOLD ms on it)
  function show(k) { i = (k + of.length) % of.length; seek(of[i]); slider.value = i; label.textContent = (i + 1) + '/' + of.length;
    if (params && marks.params.length) params.textContent = marks.params[i] || '';
    if (i === of.length - 1) end = performance.now(); }
  function unhint() { if (hint) { hint.hidden = true; hint = null; } }
  function pause() { if (timer) { clearInterval(timer); timer = null; } unhint(); }
  function tick() { if (i < of.length - 1) show(i + 1); else if (!loop.checked) pause();
    else if (performance.now() - end >= FF_HOLD) show(0); }
  function play() { unhint(); if (!timer) { if (i === of.length - 1 && !loop.checked) show(0);
    timer = setInterval(tick, Math.min(1000 / fps, 2147483647)); } }
  $('play').onclick = () => timer ? pause() : play();
  if (hint) hint.onclick = e => { e.stopPropagation(); play(); };
  $('first').onclick = () => { pause(); show(0); };
  $('last').onclick = () => { pause(); show(of.length - 1); };
  $('prev').onclick = () => { pause(); show(i - 1); };
  $('next').onclick = () => { pause(); show(i + 1); };
  slider.oninput = () => { pause(); show(+slider.value); };
  function near(e) {  // the frame whose marker is nearest (12 screen px at most), or -1
    const r = canvas.getBoundingClientRect(), s = W / r.width, x = (e.clientX - r.left) * s, y = (e.clientY - r.top) * s;
    let best = -1, bd = (12 * s) ** 2;
    for (const track of marks.pts) track.forEach((p, k) => { if (!p) return;
      const d = (p[0] - x) ** 2 + (p[1] - y) ** 2; if (d < bd) { bd = d; best = k; } });
    return best;
  }
  canvas.addEventListener('pointermove', e => { const k = near(e); canvas.style.cursor = k < 0 ? '' : 'pointer';
    if (k >= 0 && (e.pointerType === 'mouse' || e.buttons)) { pause(); show(k); } });
  canvas.addEventListener('click', e => { const k = near(e); if (k >= 0) { pause(); show(k); } });
  root.tabIndex = 0; root.setAttribute('data-lm-suppress-shortcuts', 'true');
  let armed = false;  // the last click was in the player
  window.addEventListener('pointerdown', e => { armed = root.contains(e.target); }, true);
  const typing = el => el && el.closest &&
    el.closest('input:not([type=range]):not([type=checkbox]), textarea, [contenteditable], .cm-editor');
  window.addEventListener('keydown', e => {
    if (!root.isConnected || e.ctrlKey || e.metaKey || e.altKey) return;
    const el = document.activeElement;
    if (!(root.contains(el) || (armed && !typing(el)))) return;
    if (e.target === slider && e.key.startsWith('Arrow')) { e.stopImmediatePropagation(); pause(); return; }  // it moves itself
    if (e.key === ' ' && root.contains(e.target) && e.target.closest('button')) { e.stopImmediatePropagation(); return; }  // it clicks
    if (e.key === ' ') timer ? pause() : play();
    else if (e.key === 'ArrowRight') { pause(); show(i + 1); }
    else if (e.key === 'ArrowLeft') { pause(); show(i - 1); }
    else if (e.key !== 'ArrowUp' && e.key !== 'ArrowDown') return;  // up/down: not the notebook's
    e.preventDefault();
    e.stopImmediatePropagation();  // the page (a notebook's shortcuts) does not act on them
  }, true);
  canvas.width = W; canvas.height = H; slider.max = of.length - 1;
  img.hidden = true; canvas.hidden = false; $('controls').hidden = false;
  if (hint) hint.hidden = of.length < 2;
  if (params) params.hidden = !marks.params.length;
  show(0);
  return {show, play, pause, get frame() { return i; }};
}
"""

# The player fits its column: never wider than the space it is given, scaled down keeping its aspect (a three-panel
# figure is ~1,600 px, a notebook column ~970 px); the controls wrap rather than widen it.
_CSS = """.ff-player{display:block;width:fit-content;max-width:100%;outline:none}
.ff-player img,.ff-player canvas{display:block;max-width:100%;height:auto}
.ff-player [hidden]{display:none!important}
.ff-controls{display:flex;flex-wrap:wrap;gap:.3em;align-items:center;margin-top:.4em}
.ff-controls button{min-width:2.4em;height:2em;display:flex;align-items:center;justify-content:center}
.ff-controls input[type=range]{flex:1;min-width:6em} .ff-note{color:#555;font-size:.85em}
.ff-controls .ff-hint{width:auto;font-weight:600;padding:0 .7em;border-radius:1em}
.ff-params{display:block;font:.8em monospace;color:#333;margin-top:.3em;white-space:pre-wrap;user-select:text;cursor:text}"""

# Inline SVG icons: no icon font to fetch (matplotlib's jshtml loads Font Awesome from a CDN), none to lack.
_ICONS = dict(first='M3 3h2v10H3zM13 3v10L6 8z', prev='M11 3v10L4 8z', play='M2 3v10l6-5zM10 3h2v10h-2zM13 3h2v10h-2z',
              next='M5 3v10l7-5z', last='M3 3v10l7-5zM11 3h2v10h-2z')
_TITLES = dict(first='first frame', prev='previous frame', play='play / pause (space)', next='next frame', last='last frame')


def _button(k) -> str:
    return (f'<button class="ff-{k}" title="{_TITLES[k]}" aria-label="{_TITLES[k].split(" (")[0]}">'
            f'<svg viewBox="0 0 16 16" width="16" height="16" fill="currentColor" aria-hidden="true">'
            f'<path d="{_ICONS[k]}"/></svg></button>')


# The canvas and controls, hidden until a script mounts the player (it sets the slider's range and the label).
_CONTROLS = ('<canvas class="ff-canvas" hidden></canvas>\n<div class="ff-controls" hidden>\n'
             + ''.join(_button(k) for k in _ICONS)
             + '\n<input class="ff-slider" type="range" min="0" max="0" value="0" aria-label="frame">\n'
             '<span class="ff-label"></span>\n'
             '<label title="start again at the end"><input class="ff-loop" type="checkbox" checked> loop</label>\n'
             '<button class="ff-hint" hidden title="play (space)">&#9654; press play</button>\n</div>\n'
             '<code class="ff-params" hidden title="the parameters of this frame (select to copy)"></code>')


def player_script() -> str:
    """The player's script: `fastfitPlayer(root)` mounts it on an element of class `ff-player` holding the image
    (`img.ff-gif`: a GIF or fastfit's APNG) and `data-counts`/`data-fps`, adding the canvas and controls when the element
    lacks them (a notebook output that holds only the GIF, say)."""
    return f'const FF_CONTROLS = {json.dumps(_CONTROLS)}, FF_HOLD = {10 * HOLD_LAST};\n{_JS}'


def player_html(image:bytes, counts:list, fps:float, title:str='fastfit animation', note:str='', marks:dict|None=None) -> str:
    """The player's markup for `image` (a GIF or APNG, its frame i standing for `counts[i]` animation frames), before its
    script: the image as an animated `<img>`, and the canvas and controls a script shows when it mounts the player.
    `marks` (`frame_marks`) holds the reading aids: where each frame's markers are, and its parameters as text."""
    note = f'\n<p class="ff-note">{html.escape(note)}</p>' if note else ''
    aids = f' data-marks="{html.escape(json.dumps(marks))}"' if marks else ''
    kind = 'png' if image.startswith(b'\x89PNG') else 'gif'
    return (f'<div class="ff-player" data-fps="{fps:g}" data-counts="{json.dumps(list(counts))}"{aids}>\n'
            f'<img class="ff-gif" alt="{html.escape(title)}" src="data:image/{kind};base64,{base64.b64encode(image).decode()}">\n'
            f'{_CONTROLS}{note}</div>')


def player_page(image:bytes, counts:list, fps:float, title:str='fastfit animation', note:str='', marks:dict|None=None) -> str:
    "A self-contained page (it makes no network request) playing `image` (a GIF or APNG), frame by frame with the controls."
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>\n'
            f'<link rel="icon" href="data:,">\n<style>\nbody{{font-family:system-ui,sans-serif;margin:1em}} {_CSS}\n'
            f'</style></head><body>\n{player_html(image, counts, fps, title, note, marks)}\n'
            f'<script>{player_script()}\nfastfitPlayer(document.querySelector(".ff-player"));\n</script></body></html>\n')


def page_image(page:str) -> tuple:
    "(image bytes: APNG or GIF, frame counts) of a player page or markup: what it plays."
    m = re.search(r'data-counts="(\[[^"]*\])"[^>]*>\s*<img class="ff-gif"[^>]*src="data:image/(?:png|gif);base64,([^"]+)"', page)
    if m is None: raise ValueError("no fastfit player in this page")
    return base64.b64decode(m.group(2)), json.loads(m.group(1))


def frames_page(fr, fps:float, name:str='animation') -> str:
    "The self-contained player page of `fr` (a `Frames`), thinned (with a warning) to stay under `animation.embed_limit`."
    limit_mb, n = mpl.rcParams['animation.embed_limit'], len(fr)
    every = FrameMarks(fr)  # the reading aids, gathered while the frames are drawn; a thinned page keeps its frames'
    png, counts = gif_of(fr, fps, each=every, stream=ApngStream)
    marks = every.of
    keep = list(range(n))
    def room(counts): return limit_mb * 2 ** 20 - len(player_page(b'', counts, fps, note=' ' * 300, marks=marks(keep)))
    step, note = 1, ''
    while 4 * math.ceil(len(png) / 3) > room(counts) and step < n - 1:  # base64 makes 4 bytes of every 3
        step = min(n - 1, max(step + 1, math.ceil(step * 4 * len(png) / 3 / room(counts))))
        keep = sorted({*range(0, n, step), n - 1})
        png, counts = gif_of(fr, fps * len(keep) / n, keep, stream=ApngStream)
        note = (f"Showing {len(keep)} of {n} frames (one in {step}) to stay under matplotlib's "
                f"animation.embed_limit of {limit_mb:g} MB; raise it to keep every frame.")
    if note: warnings.warn(f"{name}: {note}")
    return player_page(png, counts, fps * sum(counts) / n, note=note, marks=marks(keep))


MAX_PARAM_TEXT = 24  # a frame's parameters are shown as text up to this many scalars (then the first ones, and a count)


class FrameMarks:
    """The player's reading aids of `fr` (a `Frames`), gathered frame by frame: call it with `k` while the artists show
    frame `k` (as `gif_of(each=)` does, right after drawing it), then `of(keep)` gives them (see `frame_marks`)."""
    def __init__(self, fr):
        self.fr, self.H = fr, fr.fig.bbox.height
        self.tracks = [pt for p in fr.panels for pt in getattr(p, 'points', [])[:1]]
        self.pts, self.texts = {}, {}

    def __call__(self, k:int):
        "Note where the moving markers are in frame `k` (the artists set to it)."
        out = []
        for pt in self.tracks:
            xy = np.asarray(pt.get_xydata(), dtype=float)
            if not len(xy) or not np.isfinite(xy[-1]).all() or not pt.get_visible(): out.append(None); continue
            x, y = pt.axes.transData.transform(xy[-1])
            out.append([round(float(x), 1), round(float(self.H - y), 1)] if np.isfinite([x, y]).all() else None)
        self.pts[k] = out

    def of(self, keep=None) -> dict:
        "The reading aids of frames `keep` (every frame if None), drawing any frame not yet noted."
        fr = self.fr
        keep = list(range(len(fr))) if keep is None else list(keep)
        for k in keep:
            if k not in self.pts: fr.draw(k); self(k)
        pts = [[self.pts[k][i] for k in keep] for i in range(len(self.tracks))]
        return {'pts': pts, 'params': [self._param_text(k) for k in keep] if len(fr.recss) == 1 else []}

    def _param_text(self, k:int) -> str:
        "Frame `k`'s parameters as text ('step 3: w=2.95  b=1.98'), made once (a thinned page asks again)."
        if k in self.texts: return self.texts[k]
        ps = self.fr.recs.params[k]
        vals = [(n, v) for name, t in ps.items() for n, v in zip(flat_names([(name, tuple(t.shape))]), t.reshape(-1).tolist())]
        text = '  '.join(f"{n}={v:.7g}" for n, v in vals[:MAX_PARAM_TEXT])
        if len(vals) > MAX_PARAM_TEXT: text += f"  ... ({len(vals):,} parameters)"
        step = self.fr.recs.steps[k]
        self.texts[k] = ('' if step is None else f"step {int(step)}: ") + text
        return self.texts[k]


def frame_marks(fr, keep=None) -> dict:
    """The player's reading aids for the frames `keep` of `fr` (a `Frames`): 'pts', per moving marker of a panel that has
    them (the loss curve's point, the path's point on the loss surface), its place in each frame in image pixels (None
    where it is not drawn); 'params', each frame's parameters as text ('w=2.95  b=1.98'; one run only). It draws each
    frame: an export gathers them while rendering instead (`FrameMarks`)."""
    return FrameMarks(fr).of(keep)


# The notebook display: two outputs, chosen by what front ends really render. The first is the GIF sent as image/png
# (text/html is stripped or escaped where outputs are sanitised, and nbconvert renders no image/gif at all; GIF bytes
# declared as PNG animate in every browser), so untrusted notebooks, GitHub, nbviewer and sanitised HTML show the
# animation moving. The second is a script (with an empty text/plain, all an untrusted front end shows of it) that runs
# only where scripts do: it mounts the player on that same GIF, read back from the output above (the notebook holds the
# frames once), then hides the image. Where it finds no image (a front end that renders outputs apart), it does
# nothing and the GIF plays on.
_MOUNT = r"""
(function (out) {
  out = out && out.jquery ? out[0] : out;  // the classic notebook and nbviewer hand over a jQuery object
  if (!out || !out.appendChild || out.querySelector('.ff-player')) return;
  let tries = 0;
  (function mount() {
    const child = out.closest && out.closest('.jp-OutputArea-child, .output_area');
    const above = child && child.previousElementSibling;
    const img = above && above.querySelector('img[src^="data:"]');
    if (!img) { if (tries++ < 100) setTimeout(mount, 50); return; }  // JupyterLab runs the script before adding it
    const root = document.createElement('div');
    root.className = 'ff-player'; root.dataset.counts = FF_COUNTS; root.dataset.fps = FF_FPS; root.dataset.marks = FF_MARKS;
    root.innerHTML = '<style>' + FF_CSS + '</style><img class="ff-gif" alt="fastfit animation">';
    root.querySelector('.ff-gif').src = img.src;
    out.appendChild(root);
    try { fastfitPlayer(root); }
    catch (e) { root.remove(); console.warn('fastfit: the player did not start; the GIF above plays instead', e); return; }
    above.style.display = 'none';
  })();
})(typeof element === 'undefined' ? null : element);
"""


def mount_script(counts:list, fps:float, marks:dict|None=None) -> str:
    """The script of a notebook output that mounts the player on the GIF of the output above it (`counts`, `fps` and
    `marks` as for `player_html`) and hides that output; all in one function scope, so a page may hold many."""
    return (f'(function () {{\n{player_script()}\nconst FF_CSS = {json.dumps(_CSS)}, FF_COUNTS = {json.dumps(json.dumps(list(counts)))}, '
            f'FF_FPS = "{fps:g}", FF_MARKS = {json.dumps(json.dumps(marks or {}))};\n{_MOUNT}}})();\n')


def _b64(data:bytes) -> str: return base64.b64encode(data).decode()


def last_frame_png(fr) -> bytes:
    "The last frame of `fr` (a `Frames`) as PNG bytes, drawn in full by matplotlib."
    canvas = FigureCanvasAgg(fr.fig)
    fr.draw(len(fr) - 1)
    canvas.draw()
    buf = io.BytesIO()
    Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3]).save(buf, format='PNG')  # RGB: no alpha to carry
    return buf.getvalue()


def notebook_outputs(fr, fps:float, name:str='FitAnimation') -> list:
    """The outputs (mime bundles) a notebook shows for the animation of `fr`: the GIF as image/png, then the script that
    mounts the player on it. A GIF over `animation.embed_limit` (matplotlib's, in MB of base64; 20 by default) is not
    embedded: the last frame is shown as PNG instead, with a one-line note saying how to make it fit."""
    marks = FrameMarks(fr)
    gif, counts = gif_of(fr, fps, each=marks)
    limit_mb, size = mpl.rcParams['animation.embed_limit'], 4 * math.ceil(len(gif) / 3)
    what = f"{name}: {len(fr)} frames at {fps:g} fps"
    if size <= limit_mb * 2 ** 20:
        return [{'image/png': _b64(gif), 'text/plain': f"<{what}, an animated GIF of {len(gif) / 1e3:,.0f} kB>"},
                {'application/javascript': mount_script(counts, fps, marks.of()), 'text/plain': ''}]
    note = (f"Showing the last frame: the animation's GIF ({size / 2 ** 20:.1f} MB in base64) is over matplotlib's "
            f"animation.embed_limit of {limit_mb:g} MB. Ask for fewer frames= or a lower dpi=, raise the limit "
            f"(plt.rcParams['animation.embed_limit'] = {math.ceil(size / 2 ** 20) + 1}), or save_animation('fit.gif').")
    return [{'image/png': _b64(last_frame_png(fr)), 'text/plain': f"<{what}: its last frame>"}, {'text/plain': note}]


class FitAnimation(FuncAnimation):
    """A matplotlib `FuncAnimation` that shows itself in a notebook as an animated GIF where outputs are sanitised and
    as fastfit's player where scripts run (see `notebook_outputs`); with `rcParams['animation.html']` set to 'jshtml' or
    'html5', as matplotlib's own representation."""
    frames_obj = None  # the `Frames` it animates, set by `animation_of`

    def __repr__(self):
        fr = self.frames_obj
        n = f"{len(fr)} frames" if fr is not None else "an animation"
        return (f"<{type(self).__name__}: {n} at {1000 / self._interval:g} fps; shows in a notebook, "
                f".save('fit.gif') writes a file (.gif, .html, .mp4 or .png)>")

    def save(self, filename, writer=None, fps=None, dpi=None, codec=None, bitrate=None, extra_args=None, metadata=None,
             extra_anim=None, savefig_kwargs=None, *, progress_callback=None):
        """Write the animation to `filename` with fastfit's writers (.gif, .html, .mp4 or .png; atomically, tens of times
        faster than matplotlib's) at its own fps unless `fps` is given; return the path. With a matplotlib `writer` or
        one of its options (codec, bitrate, ...), or a suffix fastfit does not write, matplotlib's own `Animation.save`."""
        from pathlib import Path

        from .writers import WRITERS, export
        theirs = dict(writer=writer, codec=codec, bitrate=bitrate, extra_args=extra_args, metadata=metadata,
                      extra_anim=extra_anim, savefig_kwargs=savefig_kwargs, progress_callback=progress_callback)
        fr = self.frames_obj
        if fr is None or any(v is not None for v in theirs.values()) or Path(filename).suffix.lower() not in WRITERS:
            return super().save(filename, fps=fps, dpi=dpi, **{k: v for k, v in theirs.items() if v is not None})
        old = fr.fig.dpi
        if dpi is not None:
            from .render import check_dpi
            from .writers import check_number
            fr.fig.set_dpi(check_dpi(check_number('dpi', dpi), tuple(fr.fig.get_size_inches())))
        try: return export(fr, filename, self.fps if fps is None else fps)
        finally: fr.fig.set_dpi(old)

    def outputs(self) -> list:
        """The mime bundles Jupyter shows: matplotlib's HTML when `rcParams['animation.html']` asks for it ('jshtml';
        'html5' when an ffmpeg is found, else fastfit's player with a warning), otherwise `notebook_outputs`."""
        fr, fmt = self.frames_obj, mpl.rcParams['animation.html']
        self._draw_was_started = True  # shown (not by matplotlib's own drawing): no "deleted without rendering" warning
        if fmt == 'jshtml' or fr is None: return [{'text/html': self.to_jshtml(), 'text/plain': repr(self)}]
        if fmt == 'html5':
            video = self._html5_video()
            if video is not None: return [{'text/html': video, 'text/plain': repr(self)}]
        return notebook_outputs(fr, 1000 / self._interval, type(self).__name__)

    def _html5_video(self) -> str|None:
        "matplotlib's `to_html5_video`, with the ffmpeg of imageio-ffmpeg (fastfit-gd[mp4]) when matplotlib finds none."
        from matplotlib.animation import writers
        if writers.is_available(mpl.rcParams['animation.writer']): return self.to_html5_video()
        try:
            import imageio_ffmpeg
            exe = imageio_ffmpeg.get_ffmpeg_exe()
        except (ImportError, RuntimeError): exe = None
        if exe is not None and mpl.rcParams['animation.writer'] == 'ffmpeg':
            with mpl.rc_context({'animation.ffmpeg_path': exe}): return self.to_html5_video()
        warnings.warn(f"rcParams['animation.html'] is 'html5', which needs the movie writer "
                      f"{mpl.rcParams['animation.writer']!r} (ffmpeg), and none is installed: showing fastfit's player "
                      "instead. pip install 'fastfit-gd[mp4]' brings an ffmpeg; or set it to 'jshtml' or 'none'.")
        return None

    def _ipython_display_(self):
        from IPython.display import display
        for data in self.outputs(): display(data, raw=True)


def animation_of(fr, fps:float=20) -> FitAnimation:
    "A matplotlib `FuncAnimation` of `fr` (a `Frames`): its figure, with `fr.draw` as the frame function."
    if not fps > 0: raise ValueError(f"fps must be > 0, got {fps!r}")
    check_gif_fps(fps)  # the one fps rule (writers.check_fps): the display embeds a GIF
    FigureCanvasAgg(fr.fig)
    anim = FitAnimation(fr.fig, fr.draw, frames=len(fr), interval=1000 / fps, blit=False, repeat=True)
    anim.fps, anim.frames_obj = fps, fr
    # Made from the records, it has nothing to lose unshown: no "Animation was deleted without rendering anything" warning.
    anim._draw_was_started = True
    return anim
