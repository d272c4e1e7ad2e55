// The gallery viewer of `iflame view` (and three.js for `iflame serve`'s page), bundled with three.js into one classic script
// (dist/iflame-viewer.js) because pages opened as file:// cannot load ES modules.
//
// The page (written by src/view/gallery.cpp) has one .card per mesh with an empty .view element;
// each mesh arrives as a classic script that pushes
//   {name, vertices, faces, positions: base64 float32 xyz, indices: base64 uint16/uint32, index_bits}
// onto window.iflameMeshes. One WebGL canvas covers the window and draws every visible card's
// scene into that card's rectangle (browsers allow only a handful of WebGL contexts per page).
//
// Input: drag a card to orbit it; click it to open a large viewer (drag: orbit, wheel: zoom,
// right-drag: pan, Esc: close). G toggles the wireframe, R resets the view.
// When every mesh is built and drawn once, #status reads "loaded N meshes" (tests look for it);
// any script error shows up there as "error: ...".
import * as THREE from 'three';
import { OrbitControls } from 'three/examples/jsm/controls/OrbitControls.js';

const FOV = 30;
// The 3/4 front-left view of `iflame render`: azimuth 35, elevation 25 degrees, front facing -Z.
const VIEW_DIR = (() => {
  const az = (35 * Math.PI) / 180, el = (25 * Math.PI) / 180;
  return new THREE.Vector3(Math.sin(az) * Math.cos(el), Math.sin(el), -Math.cos(az) * Math.cos(el));
})();
// Far enough that the unit bounding sphere fits the cone with a small margin.
const DISTANCE = 1.08 / Math.sin(((FOV / 2) * Math.PI) / 180);
const CLEAR = new THREE.Color(0xffffff);
const KEY_OFFSET = new THREE.Vector3(-1.2, 1.5, 0);  // in camera space

const statusEl = document.getElementById('status');
function setStatus(text) {
  if (statusEl) statusEl.textContent = text;
  document.body.dataset.status = text;
}
window.addEventListener('error', (e) => setStatus('error: ' + e.message));

function decodeBase64(text) {
  const bin = atob(text);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; ++i) bytes[i] = bin.charCodeAt(i);
  return bytes.buffer;
}

// A mesh record -> an indexed geometry centered at the origin with bounding-sphere radius 1.
function buildGeometry(rec) {
  const positions = new Float32Array(decodeBase64(rec.positions));
  const indexBuffer = decodeBase64(rec.indices);
  const indices = rec.index_bits === 16 ? new Uint16Array(indexBuffer) : new Uint32Array(indexBuffer);
  if (positions.length !== 3 * rec.vertices || indices.length !== 3 * rec.faces) {
    throw new Error(rec.name + ': mesh data does not match its counts');
  }
  const geo = new THREE.BufferGeometry();
  geo.setAttribute('position', new THREE.BufferAttribute(positions, 3));
  geo.setIndex(new THREE.BufferAttribute(indices, 1));
  geo.computeBoundingBox();
  const center = geo.boundingBox.getCenter(new THREE.Vector3());
  geo.translate(-center.x, -center.y, -center.z);
  geo.computeBoundingSphere();
  const r = geo.boundingSphere.radius > 0 ? geo.boundingSphere.radius : 1;
  geo.scale(1 / r, 1 / r, 1 / r);
  geo.computeVertexNormals();
  return geo;
}

// Front faces blue-grey, back faces (inverted winding) warm, like `iflame render`.
const frontMaterial = new THREE.MeshStandardMaterial({
  color: 0x8aa6cc, roughness: 0.75, metalness: 0.0, flatShading: true, side: THREE.FrontSide,
  polygonOffset: true, polygonOffsetFactor: 1, polygonOffsetUnits: 1,
});
const backMaterial = frontMaterial.clone();
backMaterial.side = THREE.BackSide;
backMaterial.color.set(0xd9a27a);
const edgeMaterial = new THREE.LineBasicMaterial({ color: 0x1c2430, transparent: true, opacity: 0.6 });

function buildScene(geo) {
  const scene = new THREE.Scene();
  scene.add(new THREE.Mesh(geo, frontMaterial));
  scene.add(new THREE.Mesh(geo, backMaterial));
  const edges = new THREE.LineSegments(new THREE.WireframeGeometry(geo), edgeMaterial);
  scene.add(edges);
  scene.add(new THREE.HemisphereLight(0xffffff, 0x505a66, 1.1));
  const key = new THREE.DirectionalLight(0xffffff, 2.4);  // from the viewer's upper left, see drawView()
  scene.add(key);
  scene.add(key.target);
  return { scene, edges, key };
}

// A camera and OrbitControls bound to one DOM element.
function makeView(element, item, zoom) {
  const camera = new THREE.PerspectiveCamera(FOV, 1, 0.01, 100);
  const controls = new OrbitControls(camera, element);
  controls.enableZoom = zoom;  // grid cards leave the wheel to page scrolling
  controls.enablePan = zoom;
  controls.minDistance = 0.3;
  controls.maxDistance = 20;
  const view = { element, camera, controls, item };
  resetView(view);
  controls.addEventListener('change', requestDraw);
  return view;
}

function resetView(view) {
  view.controls.target.set(0, 0, 0);
  view.camera.position.copy(VIEW_DIR).multiplyScalar(DISTANCE);
  view.camera.up.set(0, 1, 0);
  view.camera.lookAt(0, 0, 0);
  view.controls.update();
}

const items = [];      // {rec, scene, edges, key, card}
const cardViews = [];  // one per item
let bigView = null;    // the open large viewer, or null
let wireframe = true;
let renderer = null;
let drawQueued = false;

function requestDraw() {
  if (drawQueued || !renderer) return;
  drawQueued = true;
  requestAnimationFrame(() => {
    drawQueued = false;
    draw();
  });
}

function drawView(view, canvasHeight) {
  const rect = view.element.getBoundingClientRect();
  if (rect.width <= 0 || rect.height <= 0 || rect.bottom < 0 || rect.top > canvasHeight ||
      rect.right < 0 || rect.left > renderer.domElement.clientWidth) {
    return false;
  }
  const x = rect.left, y = canvasHeight - rect.bottom;  // WebGL's origin is bottom-left
  renderer.setViewport(x, y, rect.width, rect.height);
  renderer.setScissor(x, y, rect.width, rect.height);
  view.camera.aspect = rect.width / rect.height;
  view.camera.updateProjectionMatrix();
  const { key, edges, scene } = view.item;
  key.position.copy(KEY_OFFSET).applyQuaternion(view.camera.quaternion).add(view.camera.position);
  key.target.position.copy(view.controls.target);
  edges.visible = wireframe;
  renderer.setClearColor(CLEAR, 1);
  renderer.clear();
  renderer.render(scene, view.camera);
  return true;
}

function draw() {
  const canvas = renderer.domElement;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  const dpr = window.devicePixelRatio || 1;
  if (canvas.width !== Math.floor(w * dpr) || canvas.height !== Math.floor(h * dpr)) renderer.setSize(w, h, false);
  renderer.setScissorTest(false);
  renderer.setClearColor(CLEAR, 0);
  renderer.clear();
  renderer.setScissorTest(true);
  let drawn = 0;
  if (bigView) {
    drawn += drawView(bigView, h) ? 1 : 0;
  } else {
    for (const v of cardViews) drawn += drawView(v, h) ? 1 : 0;
  }
  return drawn;
}

function openBig(index) {
  const overlay = document.getElementById('overlay');
  const item = items[index];
  overlay.hidden = false;
  const text = (sel) => item.card.querySelector(sel).textContent;
  overlay.querySelector('.caption').textContent = text('.name') + ' \u2014 ' + text('.counts');
  if (bigView) bigView.controls.dispose();
  bigView = makeView(overlay.querySelector('.view'), item, true);
  // Start from the card's current angle.
  bigView.camera.position.copy(cardViews[index].camera.position);
  bigView.controls.update();
  requestDraw();
}

function closeBig() {
  if (!bigView) return;
  bigView.controls.dispose();
  bigView = null;
  document.getElementById('overlay').hidden = true;
  requestDraw();
}

// A click is a press and release without dragging (a drag orbits the card instead).
function onClick(element, action) {
  let down = null;
  element.addEventListener('pointerdown', (e) => { down = [e.clientX, e.clientY]; });
  element.addEventListener('pointerup', (e) => {
    if (down && Math.hypot(e.clientX - down[0], e.clientY - down[1]) < 5) action();
    down = null;
  });
}

function start() {
  const records = window.iflameMeshes || [];
  const canvas = document.getElementById('canvas');
  try {
    renderer = new THREE.WebGLRenderer({ canvas, antialias: true, alpha: true });
  } catch (e) {
    setStatus('error: WebGL is unavailable: ' + e.message);
    return;
  }
  renderer.setPixelRatio(window.devicePixelRatio || 1);
  renderer.autoClear = false;

  const byId = new Map(records.map((r) => [r.id, r]));
  for (const card of document.querySelectorAll('.card')) {
    const rec = byId.get(card.dataset.mesh);
    if (!rec) {
      card.querySelector('.view').textContent = 'mesh data missing';
      continue;
    }
    const item = { rec, card, ...buildScene(buildGeometry(rec)) };
    const index = items.length;
    items.push(item);
    const view = makeView(card.querySelector('.view'), item, false);
    cardViews.push(view);
    onClick(view.element, () => openBig(index));
  }

  const overlay = document.getElementById('overlay');
  overlay.addEventListener('click', (e) => { if (e.target === overlay) closeBig(); });
  window.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const k = e.key.toLowerCase();
    if (k === 'g') {
      wireframe = !wireframe;
      requestDraw();
    } else if (k === 'r') {
      if (bigView) resetView(bigView); else cardViews.forEach(resetView);
      requestDraw();
    } else if (k === 'escape') {
      closeBig();
    }
  });
  window.addEventListener('scroll', requestDraw, { passive: true });
  window.addEventListener('resize', requestDraw);

  draw();  // the first frame synchronously, so a headless load sees it
  setStatus('loaded ' + items.length + (items.length === 1 ? ' mesh' : ' meshes'));
  // For tests and scripting: draw now (the canvas can be read back in the same task) and state.
  window.iflameViewer = { draw, wireframe: () => wireframe, open: () => (bigView ? items.indexOf(bigView.item) : -1) };
}

// The server's page (web/src/serve.html, <body data-page="serve">) uses three.js from this bundle
// and runs its own code; galleries start here.
window.iflameThree = { THREE, OrbitControls };
if (document.body.dataset.page !== 'serve') start();
