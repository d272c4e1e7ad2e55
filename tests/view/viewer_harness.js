// Loaded after iflame-viewer.js by tests/view/browser_test.cpp: drives the gallery with synthetic
// mouse and key events, draws each state at once (window.iflameViewer.draw) and reads the WebGL
// canvas back in the same task, then writes what it measured as JSON into <pre id="harness">.
(function () {
  const glCanvas = document.getElementById('canvas');
  const scratch = document.createElement('canvas');
  const ctx = scratch.getContext('2d', { willReadFrequently: true });
  let basePixels = null;

  // Pixels of `el`'s rectangle: blue-grey mesh faces, dark edge pixels, and pixels that differ
  // from the first state's (same size only).
  function measure(el) {
    const r = el.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(r.width * dpr), h = Math.round(r.height * dpr);
    scratch.width = w;
    scratch.height = h;
    ctx.clearRect(0, 0, w, h);
    ctx.drawImage(glCanvas, r.left * dpr, r.top * dpr, w, h, 0, 0, w, h);
    const px = ctx.getImageData(0, 0, w, h).data;
    let blue = 0, dark = 0, changed = 0;
    const same = basePixels && basePixels.length === px.length;
    for (let i = 0; i < px.length; i += 4) {
      if (px[i + 2] - px[i] > 40 && px[i + 2] > 110) ++blue;
      if (px[i + 3] > 0 && (px[i] + px[i + 1] + px[i + 2]) / 3 < 105) ++dark;
      if (same && (Math.abs(px[i] - basePixels[i]) > 24 || Math.abs(px[i + 1] - basePixels[i + 1]) > 24 ||
                   Math.abs(px[i + 2] - basePixels[i + 2]) > 24)) {
        ++changed;
      }
    }
    if (!basePixels) basePixels = px;
    return { width: w, blue, dark, changed, wireframe: window.iflameViewer.wireframe(), open: window.iflameViewer.open() };
  }

  const card = () => document.querySelector('.card .view');
  const big = () => document.querySelector('#overlay .view');
  function pointer(type, target, x, y, buttons) {
    target.dispatchEvent(new PointerEvent(type, {
      pointerId: 1, pointerType: 'mouse', isPrimary: true, clientX: x, clientY: y, button: 0, buttons, bubbles: true,
    }));
  }
  function key(k) {
    window.dispatchEvent(new KeyboardEvent('keydown', { key: k }));
  }
  function press(target, dx, dy) {
    const r = target.getBoundingClientRect();
    const x = r.left + 40, y = r.top + 40;
    pointer('pointerdown', target, x, y, 1);
    if (dx || dy) pointer('pointermove', target, x + dx, y + dy, 1);
    pointer('pointerup', target, x + dx, y + dy, 0);
  }

  const steps = [
    ['start', () => {}, card],
    ['drag', () => press(card(), 80, 10), card],  // orbits the first card
    ['reset', () => key('r'), card],
    ['open', () => press(card(), 0, 0), big],     // a click opens the large viewer
    ['nowire', () => key('g'), big],
    ['close', () => { key('g'); key('Escape'); }, card],
  ];
  const out = {};
  for (const [name, action, element] of steps) {
    try {
      action();
      window.iflameViewer.draw();
      out[name] = measure(element());
    } catch (e) {
      out[name] = { error: String(e) };
    }
  }
  const pre = document.createElement('pre');
  pre.id = 'harness';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
