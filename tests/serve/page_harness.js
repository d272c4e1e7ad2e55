// Appended to the page of `iflame serve` by tests/serve/page_browser_test.cpp: sets the form,
// clicks Generate, waits for the tile to finish, then posts what it saw as JSON to the URL in
// the page's ?report= parameter: the tile's face counter, its colored canvas pixels (before the
// first face and at the end), and the two downloads (the OBJ's text, the GLB's header).
// It first waits for the switch checkboxes (made from /health) and ticks escape_loops; it also
// reports the switches offered and the request the tile was made for.
window.addEventListener('load', () => {
  const ready = setInterval(() => {
    if (document.getElementById('switches').dataset.ready !== 'true') return;
    clearInterval(ready);
    start();
  }, 20);
});
function start() {
  document.getElementById('seed').value = '5';
  document.getElementById('max_faces').value = '30';
  const switches = [...document.querySelectorAll('#switches input')];
  const escape = switches.find((i) => i.dataset.field === 'escape_loops');
  if (escape) escape.checked = true;
  document.getElementById('generate').click();
  const first = document.querySelector('.tile');  // made by the click, before any face arrives
  const colored = (tile) => {
    const c = tile.querySelector('canvas');
    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < px.length; i += 4) if (px[i + 3] > 0 && (px[i] < 235 || px[i + 1] < 235 || px[i + 2] < 235)) ++n;
    return n;
  };
  const before = first ? colored(first) : -1;
  const poll = setInterval(async () => {
    const tile = document.querySelector('.tile');
    if (!tile) return;
    if (tile.dataset.done !== 'true') return;
    clearInterval(poll);
    const links = [...tile.querySelectorAll('.downloads a')];
    const obj = links.length > 0 ? await (await fetch(links[0].href)).text() : '';
    const glb = links.length > 1 ? new DataView(await (await fetch(links[1].href)).arrayBuffer()) : null;
    const report = new URLSearchParams(location.search).get('report');
    fetch(report, { method: 'POST', mode: 'no-cors', body: JSON.stringify({
      faces: +tile.dataset.faces, finished: tile.dataset.finished || '', info: tile.querySelector('.info').textContent,
      before, after: colored(tile), downloads: links.map((l) => l.download), obj,
      switches: switches.map((i) => i.dataset.field), request: JSON.parse(tile.dataset.request),
      tile_at_click: first !== null,
      glb: glb ? { magic: glb.getUint32(0, true), version: glb.getUint32(4, true), length: glb.getUint32(8, true),
                   bytes: glb.byteLength } : null,
    }) });
  }, 20);
}
