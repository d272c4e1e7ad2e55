#include "render/render.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <thread>

#include "render/font.h"
#include "util/error.h"

namespace iflame::render {
namespace {

constexpr double kPi = 3.14159265358979323846;

struct V3 {
  double x = 0, y = 0, z = 0;
};
V3 operator-(V3 a, V3 b) { return {a.x - b.x, a.y - b.y, a.z - b.z}; }
V3 operator+(V3 a, V3 b) { return {a.x + b.x, a.y + b.y, a.z + b.z}; }
V3 operator*(double s, V3 a) { return {s * a.x, s * a.y, s * a.z}; }
double dot(V3 a, V3 b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
V3 cross(V3 a, V3 b) { return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x}; }
V3 normalized(V3 a) {
  const double n = std::sqrt(dot(a, a));
  return n > 0 ? (1.0 / n) * a : V3{};
}

// The mesh normalized once (center, largest side 1) with the faces that can be drawn.
struct Prepared {
  std::vector<V3> vertices;
  std::vector<Tri> faces;
  std::vector<bool> used;  // vertex referenced by a kept face
};

Prepared prepare(const Mesh& mesh) {
  Prepared p;
  const int32_t nv = int32_t(std::min<size_t>(mesh.vertices.size(), size_t(INT32_MAX)));
  auto finite = [&](int32_t i) {
    const Vec3& v = mesh.vertices[size_t(i)];
    return std::isfinite(v[0]) && std::isfinite(v[1]) && std::isfinite(v[2]);
  };
  p.used.assign(size_t(nv), false);
  for (const Tri& t : mesh.faces) {
    bool ok = true;
    for (int32_t i : t) ok = ok && i >= 0 && i < nv && finite(i);
    if (!ok || t[0] == t[1] || t[1] == t[2] || t[0] == t[2]) continue;
    p.faces.push_back(t);
    for (int32_t i : t) p.used[size_t(i)] = true;
  }
  V3 lo{std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity()};
  V3 hi = -1.0 * lo;
  for (int32_t i = 0; i < nv; ++i) {
    if (!p.used[size_t(i)]) continue;
    const Vec3& v = mesh.vertices[size_t(i)];
    lo = {std::min(lo.x, v[0]), std::min(lo.y, v[1]), std::min(lo.z, v[2])};
    hi = {std::max(hi.x, v[0]), std::max(hi.y, v[1]), std::max(hi.z, v[2])};
  }
  p.vertices.assign(size_t(nv), V3{});
  if (p.faces.empty()) return p;
  // Halves first so that even coordinates near the double range cannot overflow.
  const V3 center = 0.5 * lo + 0.5 * hi;
  double half_side = std::max({0.5 * hi.x - 0.5 * lo.x, 0.5 * hi.y - 0.5 * lo.y, 0.5 * hi.z - 0.5 * lo.z});
  if (!(half_side > 0) || !std::isfinite(half_side)) half_side = 0.5;
  for (int32_t i = 0; i < nv; ++i) {
    if (!p.used[size_t(i)]) continue;
    const Vec3& v = mesh.vertices[size_t(i)];
    p.vertices[size_t(i)] = (0.5 / half_side) * (V3{v[0], v[1], v[2]} - center);
  }
  return p;
}

struct Camera {
  V3 eye, right, up, forward;
  bool ortho = false;
  double distance = 3;

  Camera(const View& view, double fov_deg) {
    const double az = view.azimuth_deg * kPi / 180, el = std::clamp(view.elevation_deg, -90.0, 90.0) * kPi / 180;
    const V3 dir{std::sin(az) * std::cos(el), std::sin(el), -std::cos(az) * std::cos(el)};
    ortho = !(fov_deg > 0.5);
    // Far enough that the unit box's bounding sphere (radius sqrt(3)/2) fits in the cone.
    distance = ortho ? 3.0 : 0.9 / std::sin(std::min(fov_deg, 120.0) * kPi / 360);
    eye = distance * dir;
    forward = -1.0 * dir;
    right = {-std::cos(az), 0, -std::sin(az)};  // horizontal, defined even looking straight down
    up = cross(right, forward);
  }
  // Screen coordinates (x right, y up, in units of the focal plane) and view depth.
  void project(V3 p, double& sx, double& sy, double& depth) const {
    const V3 d = p - eye;
    depth = dot(d, forward);
    const double inv = ortho ? 1.0 : 1.0 / std::max(depth, 1e-9);
    sx = dot(d, right) * inv;
    sy = dot(d, up) * inv;
  }
};

// How the projected mesh maps to pixels: pixel = center + (screen - mid) * scale, y flipped.
struct Framing {
  double mid_x = 0, mid_y = 0, half_w = 0, half_h = 0;  // projected bounding box
  bool any = false;
};

Framing frame(const Prepared& p, const Camera& cam) {
  Framing f;
  double lo_x = 1e300, lo_y = 1e300, hi_x = -1e300, hi_y = -1e300;
  for (size_t i = 0; i < p.vertices.size(); ++i) {
    if (!p.used[i]) continue;
    double sx, sy, d;
    cam.project(p.vertices[i], sx, sy, d);
    lo_x = std::min(lo_x, sx), hi_x = std::max(hi_x, sx);
    lo_y = std::min(lo_y, sy), hi_y = std::max(hi_y, sy);
    f.any = true;
  }
  if (!f.any) return f;
  f.mid_x = 0.5 * (lo_x + hi_x);
  f.mid_y = 0.5 * (lo_y + hi_y);
  f.half_w = 0.5 * (hi_x - lo_x);
  f.half_h = 0.5 * (hi_y - lo_y);
  return f;
}

// Output pixels per screen unit so the framing fits a w x h image inside the margins.
double fit_scale(const Framing& f, int w, int h, double margin) {
  const double m = std::clamp(margin, 0.0, 0.45);
  const double avail_w = 0.5 * w * (1 - 2 * m), avail_h = 0.5 * h * (1 - 2 * m);
  double s = std::numeric_limits<double>::infinity();
  if (f.half_w > 1e-12) s = std::min(s, avail_w / f.half_w);
  if (f.half_h > 1e-12) s = std::min(s, avail_h / f.half_h);
  return std::isfinite(s) ? s : 1.0;
}

struct Light {
  V3 dir;
  double strength;
};

// Renders one framed view. `scale` is in output pixels per screen unit.
Image rasterize(const Prepared& p, const Camera& cam, const Framing& fr, double scale, int width, int height,
                const RenderStyle& style) {
  Image out(width, height, 3, style.background);
  if (width <= 0 || height <= 0 || p.faces.empty() || !fr.any) return out;
  const int ss = std::clamp(style.supersample, 1, 8);
  const int W = width * ss, H = height * ss;
  const double s = scale * ss, cx = 0.5 * W, cy = 0.5 * H;

  // Project every used vertex to supersampled pixels once.
  const size_t nv = p.vertices.size();
  std::vector<double> px(nv), py(nv), depth(nv);
  for (size_t i = 0; i < nv; ++i) {
    if (!p.used[i]) continue;
    double sx, sy;
    cam.project(p.vertices[i], sx, sy, depth[i]);
    px[i] = cx + (sx - fr.mid_x) * s;
    py[i] = cy - (sy - fr.mid_y) * s;
  }

  // Lights live in the camera frame so every view is lit alike: a key light from above and a
  // little to the right of the camera (faces toward the viewer read brightest after tops), a
  // weaker fill from the left, and some light from the world's up direction so tops stand out.
  const V3 toward_cam = -1.0 * cam.forward;
  const Light lights[] = {
      {normalized(0.4 * cam.right + 0.6 * cam.up + 1.0 * toward_cam), 0.58},
      {normalized((-0.85) * cam.right + 0.1 * cam.up + 0.5 * toward_cam), 0.18},
      {V3{0, 1, 0}, 0.12},
  };
  const double ambient = 0.38;

  // Per-sample z-buffer (larger key = closer), face id and color.
  const size_t n = size_t(W) * size_t(H);
  std::vector<float> key(n, -std::numeric_limits<float>::infinity());
  std::vector<int32_t> face(n, -1);
  std::vector<float> color(3 * n);
  const double edge_scale = std::max(1.0, std::min(width, height) / 512.0);
  const double half_edge = style.edges ? 0.5 * std::max(0.0, style.edge_width) * edge_scale * ss : 0;
  const float er = style.edge_color.r, eg = style.edge_color.g, eb = style.edge_color.b;

  for (size_t fi = 0; fi < p.faces.size(); ++fi) {
    const Tri& t = p.faces[fi];
    const size_t a = size_t(t[0]), b = size_t(t[1]), c = size_t(t[2]);
    const double x0 = px[a], y0 = py[a], x1 = px[b], y1 = py[b], x2 = px[c], y2 = py[c];
    const double area2 = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0);
    if (!(std::abs(area2) > 1e-9) || !std::isfinite(area2)) continue;
    // Off-screen by far (cannot happen when framed; keeps the int conversions below defined).
    if (std::max({std::abs(x0), std::abs(x1), std::abs(x2), std::abs(y0), std::abs(y1), std::abs(y2)}) > 1e8) continue;
    if (depth[a] <= 1e-6 || depth[b] <= 1e-6 || depth[c] <= 1e-6) continue;  // behind the eye (cannot happen when framed)

    // Two-sided flat shading.
    const V3 &va = p.vertices[a], &vb = p.vertices[b], &vc = p.vertices[c];
    V3 normal = normalized(cross(vb - va, vc - va));
    const V3 to_eye = cam.ortho ? toward_cam : cam.eye - va;
    const bool front = dot(normal, to_eye) >= 0;
    if (!front) normal = -1.0 * normal;
    double shade = ambient;
    for (const Light& l : lights) shade += l.strength * std::max(0.0, dot(normal, l.dir));
    const Rgb base = front ? style.front_color : style.back_color;
    const float fr_ = float(std::min(255.0, base.r * shade)), fg = float(std::min(255.0, base.g * shade)),
                fb = float(std::min(255.0, base.b * shade));

    // Depth key interpolated linearly in screen space: 1/z for perspective, -z for orthographic.
    auto key_of = [&](size_t v) { return cam.ortho ? -depth[v] : 1.0 / depth[v]; };
    const double k0 = key_of(a), k1 = key_of(b), k2 = key_of(c);
    // Lengths of the edges opposite each vertex, to turn edge functions into pixel distances.
    const double l0 = std::hypot(x2 - x1, y2 - y1), l1 = std::hypot(x0 - x2, y0 - y2), l2 = std::hypot(x1 - x0, y1 - y0);
    // Fade the lines of triangles too small to show them (a dense mesh reads as a surface).
    const double min_height = std::abs(area2) / std::max({l0, l1, l2});
    const double edge_alpha = half_edge > 0 ? std::clamp(min_height / (6 * half_edge), 0.0, 1.0) : 0;
    const double inv_area = 1.0 / area2;

    const int bx0 = std::max(0, int(std::floor(std::min({x0, x1, x2})))), bx1 = std::min(W - 1, int(std::ceil(std::max({x0, x1, x2}))));
    const int by0 = std::max(0, int(std::floor(std::min({y0, y1, y2})))), by1 = std::min(H - 1, int(std::ceil(std::max({y0, y1, y2}))));
    for (int y = by0; y <= by1; ++y) {
      const double sy = y + 0.5;
      for (int x = bx0; x <= bx1; ++x) {
        const double sx = x + 0.5;
        // Barycentric weights from the three edge functions.
        const double w0 = ((x2 - x1) * (sy - y1) - (y2 - y1) * (sx - x1)) * inv_area;
        const double w1 = ((x0 - x2) * (sy - y2) - (y0 - y2) * (sx - x2)) * inv_area;
        const double w2 = 1.0 - w0 - w1;
        if (w0 < 0 || w1 < 0 || w2 < 0) continue;
        const float k = float(w0 * k0 + w1 * k1 + w2 * k2);
        const size_t idx = size_t(y) * size_t(W) + size_t(x);
        if (k <= key[idx]) continue;
        key[idx] = k;
        face[idx] = int32_t(fi);
        float r = fr_, g = fg, bl = fb;
        if (edge_alpha > 0) {
          // Distance to the nearest edge, in samples: w_i * |area2| / |opposite edge|.
          const double dist = std::abs(area2) * std::min({l0 > 0 ? w0 / l0 : 1e9, l1 > 0 ? w1 / l1 : 1e9, l2 > 0 ? w2 / l2 : 1e9});
          const double cov = std::clamp(half_edge + 0.5 - dist, 0.0, 1.0) * edge_alpha;
          if (cov > 0) {
            const float al = float(cov);
            r += (er - r) * al;
            g += (eg - g) * al;
            bl += (eb - bl) * al;
          }
        }
        color[3 * idx] = r;
        color[3 * idx + 1] = g;
        color[3 * idx + 2] = bl;
      }
    }
  }

  // Outlines: a sample near a closer sample of another face (or near any surface, for the
  // background) is drawn in the edge color. With the half-width lines inside each triangle this
  // gives silhouettes and occlusion boundaries the same width as interior edges.
  std::vector<uint8_t> outline;
  if (half_edge > 0) {
    outline.assign(n, 0);
    const double r = half_edge;
    const int ri = int(std::ceil(r));
    std::vector<std::pair<int, int>> offsets;
    for (int dy = -ri; dy <= ri; ++dy) {
      for (int dx = -ri; dx <= ri; ++dx) {
        if ((dx || dy) && dx * dx + dy * dy <= r * r + 1e-9) offsets.emplace_back(dx, dy);
      }
    }
    const double eps_depth = 0.02;  // normalized units (the object is 1 across)
    auto depth_of = [&](float k) { return cam.ortho ? -double(k) : 1.0 / double(k); };
    for (int y = 0; y < H; ++y) {
      for (int x = 0; x < W; ++x) {
        const size_t idx = size_t(y) * size_t(W) + size_t(x);
        const int32_t f = face[idx];
        const double d = f >= 0 ? depth_of(key[idx]) : 0;
        for (const auto& [dx, dy] : offsets) {
          const int xx = x + dx, yy = y + dy;
          if (xx < 0 || yy < 0 || xx >= W || yy >= H) continue;
          const size_t j = size_t(yy) * size_t(W) + size_t(xx);
          if (face[j] < 0 || face[j] == f) continue;
          if (f < 0 || depth_of(key[j]) < d - eps_depth) {
            outline[idx] = 1;
            break;
          }
        }
      }
    }
  }

  // Resolve: box-filter each ss x ss block.
  const float bg[3] = {float(style.background.r), float(style.background.g), float(style.background.b)};
  const float inv = 1.0f / float(ss * ss);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      float acc[3] = {0, 0, 0};
      for (int sy = 0; sy < ss; ++sy) {
        for (int sx = 0; sx < ss; ++sx) {
          const size_t idx = size_t(y * ss + sy) * size_t(W) + size_t(x * ss + sx);
          const float* c = face[idx] >= 0 ? &color[3 * idx] : bg;
          if (!outline.empty() && outline[idx]) {
            acc[0] += er, acc[1] += eg, acc[2] += eb;
          } else {
            acc[0] += c[0], acc[1] += c[1], acc[2] += c[2];
          }
        }
      }
      uint8_t* o = out.at(x, y);
      for (int k = 0; k < 3; ++k) o[k] = uint8_t(std::clamp(std::lround(acc[k] * inv), 0L, 255L));
    }
  }
  return out;
}

const std::vector<View>& all_views() {
  static const std::vector<View> views = {
      {"front-left", 35, 25}, {"side", 90, 12},     {"top", 0, 90},      {"front", 0, 12},
      {"back-right", 215, 25}, {"back", 180, 12}, {"bottom", 0, -90},
  };
  return views;
}

}  // namespace

const std::vector<std::string>& view_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const View& v : all_views()) out.push_back(v.name);
    return out;
  }();
  return names;
}

View view_by_name(const std::string& name) {
  for (const View& v : all_views()) {
    if (v.name == name) return v;
  }
  std::string list;
  for (const std::string& n : view_names()) list += (list.empty() ? "" : ", ") + n;
  throw Error("unknown view '" + name + "' (known: " + list + ")");
}

std::vector<View> default_views(int count) {
  const auto& v = all_views();
  return std::vector<View>(v.begin(), v.begin() + std::clamp<ptrdiff_t>(count, 1, ptrdiff_t(v.size())));
}

Image render_mesh(const Mesh& mesh, const View& view, int width, int height, const RenderStyle& style) {
  const Prepared p = prepare(mesh);
  const Camera cam(view, style.fov_deg);
  const Framing fr = frame(p, cam);
  return rasterize(p, cam, fr, fit_scale(fr, width, height, style.margin), width, height, style);
}

Image render_views(const Mesh& mesh, const std::vector<View>& views, int size, const RenderStyle& style) {
  const int count = std::max<int>(1, int(views.size()));
  Image out(size * count, size, 3, style.background);
  const Prepared p = prepare(mesh);
  std::vector<Camera> cams;
  std::vector<Framing> frames;
  double scale = std::numeric_limits<double>::infinity();
  for (const View& v : views) {
    cams.emplace_back(v, style.fov_deg);
    frames.push_back(frame(p, cams.back()));
    if (frames.back().any) scale = std::min(scale, fit_scale(frames.back(), size, size, style.margin));
  }
  if (!std::isfinite(scale)) scale = 1;
  for (size_t i = 0; i < views.size(); ++i) {
    out.blit(rasterize(p, cams[i], frames[i], scale, size, size, style), int(i) * size, 0);
  }
  return out;
}

int caption_height(int cell_size, int lines) {
  if (lines <= 0) return 0;
  const int font_scale = std::max(1, cell_size / 256);
  return lines * (text_height(font_scale) + 3 * font_scale) + 6 * font_scale;
}

Image render_grid(const std::vector<Mesh>& meshes, const GridOptions& options, const std::vector<std::string>& captions) {
  const int n = int(meshes.size());
  const int cell = std::max(8, options.cell_size);
  const int columns = options.columns > 0 ? std::min(options.columns, std::max(n, 1))
                                          : std::max(1, int(std::ceil(std::sqrt(double(std::max(n, 1))))));
  const int rows = std::max(1, (n + columns - 1) / columns);
  auto split = [](const std::string& s) {
    std::vector<std::string> lines;
    size_t start = 0;
    for (size_t nl; (nl = s.find('\n', start)) != std::string::npos; start = nl + 1) lines.push_back(s.substr(start, nl - start));
    lines.push_back(s.substr(start));
    return lines;
  };
  int lines = 0;
  for (int i = 0; i < n && size_t(i) < captions.size(); ++i) {
    if (!captions[size_t(i)].empty()) lines = std::max(lines, int(split(captions[size_t(i)]).size()));
  }
  const int cap_h = caption_height(cell, lines);
  const int font_scale = std::max(1, cell / 256);
  Image out(columns * cell, rows * (cell + cap_h), 3, options.style.background);

  std::vector<Image> cells(static_cast<size_t>(n));
  std::atomic<int> next{0};
  auto work = [&] {
    for (int i = next++; i < n; i = next++) cells[size_t(i)] = render_mesh(meshes[size_t(i)], options.view, cell, cell, options.style);
  };
  // Each worker holds its own supersampled buffers (about 50 MB at 512 px, 3x3), so at most 8.
  const int threads = std::min(n, options.threads > 0 ? options.threads : int(std::clamp(std::thread::hardware_concurrency(), 1u, 8u)));
  if (threads <= 1) {
    work();
  } else {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(work);
    for (auto& th : pool) th.join();
  }

  const Rgb first_color{40, 40, 40}, other_color{120, 120, 120};
  for (int i = 0; i < n; ++i) {
    const int x = (i % columns) * cell, y = (i / columns) * (cell + cap_h);
    out.blit(cells[size_t(i)], x, y);
    if (cap_h == 0 || size_t(i) >= captions.size() || captions[size_t(i)].empty()) continue;
    const std::vector<std::string> parts = split(captions[size_t(i)]);
    for (size_t l = 0; l < parts.size(); ++l) {
      const std::string text = fit_text(parts[l], cell - 8 * font_scale, font_scale);
      draw_text(out, x + (cell - text_width(text, font_scale)) / 2, y + cell + int(l) * (text_height(font_scale) + 3 * font_scale),
                text, l == 0 ? first_color : other_color, font_scale);
    }
  }
  return out;
}

}  // namespace iflame::render
