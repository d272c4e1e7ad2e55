// The rasterizer: framing, camera conventions (Y up, front at -Z, mirror symmetry), two-sided
// shading, robustness to degenerate input, and the multi-view / grid layouts.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "render/font.h"
#include "render/render.h"
#include "util/error.h"

namespace iflame::render {
namespace {

Mesh box(double sx = 1, double sy = 1, double sz = 1, Vec3 at = {0, 0, 0}) {
  Mesh m;
  for (int i = 0; i < 8; ++i) {
    m.vertices.push_back({at[0] + (i & 1 ? sx : 0), at[1] + (i & 2 ? sy : 0), at[2] + (i & 4 ? sz : 0)});
  }
  // Outward-facing (counter-clockwise seen from outside) quads, two triangles each.
  const int quads[6][4] = {{0, 2, 3, 1}, {4, 5, 7, 6}, {0, 1, 5, 4}, {2, 6, 7, 3}, {0, 4, 6, 2}, {1, 3, 7, 5}};
  const int32_t base = 0;
  for (const auto& q : quads) {
    m.faces.push_back({base + q[0], base + q[1], base + q[2]});
    m.faces.push_back({base + q[0], base + q[2], base + q[3]});
  }
  return m;
}

Mesh merge(const Mesh& a, const Mesh& b) {
  Mesh m = a;
  const int32_t off = int32_t(a.vertices.size());
  m.vertices.insert(m.vertices.end(), b.vertices.begin(), b.vertices.end());
  for (Tri t : b.faces) m.faces.push_back({t[0] + off, t[1] + off, t[2] + off});
  return m;
}

struct Coverage {
  size_t count = 0;
  double cx = 0, cy = 0;
  int x0 = 1 << 30, y0 = 1 << 30, x1 = -1, y1 = -1;
};

Coverage coverage(const Image& img, Rgb bg = kWhite) {
  Coverage c;
  for (int y = 0; y < img.height; ++y) {
    for (int x = 0; x < img.width; ++x) {
      if (img.get(x, y) == bg) continue;
      ++c.count;
      c.cx += x, c.cy += y;
      c.x0 = std::min(c.x0, x), c.x1 = std::max(c.x1, x);
      c.y0 = std::min(c.y0, y), c.y1 = std::max(c.y1, y);
    }
  }
  if (c.count) c.cx /= double(c.count), c.cy /= double(c.count);
  return c;
}

int row_width(const Image& img, int y) {
  int n = 0;
  for (int x = 0; x < img.width; ++x) n += img.get(x, y) != kWhite;
  return n;
}

TEST(Render, CubeIsCenteredAndFramed) {
  const Image img = render_mesh(box(2, 2, 2, {5, -3, 7}), view_by_name("front-left"), 128, 96);
  ASSERT_EQ(img.width, 128);
  ASSERT_EQ(img.height, 96);
  const Coverage c = coverage(img);
  ASSERT_GT(c.count, 0u);
  EXPECT_NEAR(0.5 * (c.x0 + c.x1), 63.5, 2.0);
  EXPECT_NEAR(0.5 * (c.y0 + c.y1), 47.5, 2.0);
  // Fills the height (the limiting side) up to the 6% margins, and stays inside them.
  EXPECT_GE(c.y0, 3);
  EXPECT_LE(c.y1, 92);
  EXPECT_LE(c.y0, 8);
  EXPECT_GE(c.y1, 87);
  EXPECT_GT(c.count, size_t(128 * 96 / 4));
  // Shaded faces differ in brightness: at least three distinct face colors (top, front, side).
  std::vector<Rgb> colors;
  for (int y = 0; y < img.height; ++y) {
    for (int x = 0; x < img.width; ++x) {
      const Rgb p = img.get(x, y);
      if (p != kWhite && std::find(colors.begin(), colors.end(), p) == colors.end()) colors.push_back(p);
    }
  }
  EXPECT_GE(colors.size(), 3u);
}

TEST(Render, MirroredMeshGivesMirroredSilhouette) {
  // An asymmetric shape: a tall box with a small box stuck to its +X side.
  const Mesh m = merge(box(1, 2, 1), box(0.6, 0.5, 0.6, {1, 0.2, 0.2}));
  Mesh mirrored = m;
  for (auto& v : mirrored.vertices) v[0] = -v[0];
  for (auto& t : mirrored.faces) std::swap(t[1], t[2]);  // keep the faces outward
  for (const char* name : {"front", "top", "back"}) {
    const View v = view_by_name(name);
    const Image a = render_mesh(m, v, 96, 96), b = render_mesh(mirrored, v, 96, 96);
    size_t differ = 0, covered = 0;
    for (int y = 0; y < 96; ++y) {
      for (int x = 0; x < 96; ++x) {
        const bool ia = a.get(x, y) != kWhite, ib = b.get(95 - x, y) != kWhite;
        covered += ia;
        differ += ia != ib;
      }
    }
    ASSERT_GT(covered, 500u) << name;
    EXPECT_LT(differ, covered / 50) << name << ": silhouettes are not mirror images";
    // And the shape really is asymmetric, so the check has teeth.
    size_t self = 0;
    for (int y = 0; y < 96; ++y) {
      for (int x = 0; x < 96; ++x) self += (a.get(x, y) != kWhite) != (a.get(95 - x, y) != kWhite);
    }
    EXPECT_GT(self, covered / 10) << name;
  }
  // From the front (camera on -Z looking toward +Z) +X is on the viewer's left: at the small
  // box's height (low down) the silhouette reaches further left than near the top.
  const Image front = render_mesh(m, view_by_name("front"), 96, 96);
  const Coverage c = coverage(front);
  auto leftmost = [&](int y) {
    for (int x = 0; x < 96; ++x) {
      if (front.get(x, y) != kWhite) return x;
    }
    return 96;
  };
  const int low = c.y1 - (c.y1 - c.y0) / 5, high = c.y0 + (c.y1 - c.y0) / 5;
  EXPECT_LT(leftmost(low) + 10, leftmost(high));
}

TEST(Render, YIsUp) {
  // A pyramid with its apex at +Y: narrow rows at the top of the image, wide at the bottom.
  Mesh m;
  m.vertices = {{-1, 0, -1}, {1, 0, -1}, {1, 0, 1}, {-1, 0, 1}, {0, 3, 0}};
  m.faces = {{0, 1, 4}, {1, 2, 4}, {2, 3, 4}, {3, 0, 4}, {0, 2, 1}, {0, 3, 2}};
  const Image img = render_mesh(m, view_by_name("front"), 100, 100);
  const Coverage c = coverage(img);
  ASSERT_GT(c.count, 0u);
  const int top = c.y0 + (c.y1 - c.y0) / 5, bottom = c.y1 - (c.y1 - c.y0) / 5;
  EXPECT_LT(row_width(img, top) * 2, row_width(img, bottom));
  EXPECT_GT(c.y1 - c.y0, c.x1 - c.x0);  // 3 tall, 2 wide
}

TEST(Render, BackFacesGetTheWarmTint) {
  // One triangle in the z=0 plane. Counter-clockwise seen from -Z (the front camera), its
  // normal points at the camera.
  Mesh front_facing;
  front_facing.vertices = {{0, 0, 0}, {0, 1, 0}, {1, 0, 0}};
  front_facing.faces = {{0, 1, 2}};
  Mesh back_facing = front_facing;
  back_facing.faces = {{0, 2, 1}};
  RenderStyle style;
  style.edges = false;
  const View v = view_by_name("front");
  const Image a = render_mesh(front_facing, v, 64, 64, style), b = render_mesh(back_facing, v, 64, 64, style);
  const Rgb pa = a.get(24, 40), pb = b.get(24, 40);
  ASSERT_NE(pa, kWhite);
  ASSERT_NE(pb, kWhite);
  EXPECT_GT(pa.b, pa.r) << "front faces are blue";
  EXPECT_GT(pb.r, pb.b) << "back faces are warm";
  EXPECT_EQ(coverage(a).count, coverage(b).count);  // both sides are drawn
}

TEST(Render, EdgesAreDrawnOnlyWhenAsked) {
  const Mesh m = box();
  RenderStyle plain;
  plain.edges = false;
  const Image with = render_mesh(m, View{}, 128, 128), without = render_mesh(m, View{}, 128, 128, plain);
  auto dark = [](const Image& img) {
    size_t n = 0;
    for (int y = 0; y < img.height; ++y) {
      for (int x = 0; x < img.width; ++x) {
        const Rgb p = img.get(x, y);
        n += p.r + p.g + p.b < 3 * 80;
      }
    }
    return n;
  };
  EXPECT_EQ(dark(without), 0u);
  EXPECT_GT(dark(with), 150u);  // the outline and the visible edges
}

TEST(Render, DegenerateInputDoesNotCrash) {
  Mesh flat;  // a square in the z=0 plane
  flat.vertices = {{0, 0, 0}, {1, 0, 0}, {1, 1, 0}, {0, 1, 0}};
  flat.faces = {{0, 1, 2}, {0, 2, 3}};
  for (const View& v : default_views(7)) {
    const Image img = render_mesh(flat, v, 48, 48);
    EXPECT_EQ(img.width, 48);
  }
  EXPECT_GT(coverage(render_mesh(flat, view_by_name("front"), 48, 48)).count, 1000u);
  EXPECT_LT(coverage(render_mesh(flat, View{"edge-on", 90, 0}, 48, 48)).count, 48u * 4);  // seen edge-on: a line at most

  Mesh point;  // every vertex the same: zero-size box, zero-area faces
  point.vertices = {{1, 1, 1}, {1, 1, 1}, {1, 1, 1}};
  point.faces = {{0, 1, 2}};
  EXPECT_EQ(coverage(render_mesh(point, View{}, 32, 32)).count, 0u);

  Mesh bad;  // out-of-range and negative indices, a repeated index, non-finite and huge values
  bad.vertices = {{0, 0, 0}, {1, 0, 0}, {0, 1, 0}, {std::nan(""), 0, 0}, {1e308, -1e308, 1e308}, {-1e308, 1e308, 0}};
  bad.faces = {{0, 1, 9}, {-1, 0, 1}, {0, 0, 1}, {0, 1, 3}, {0, 4, 5}};
  const Image img = render_mesh(bad, View{}, 32, 32);
  EXPECT_EQ(img.width, 32);

  EXPECT_EQ(coverage(render_mesh(Mesh{}, View{}, 16, 16)).count, 0u);
  EXPECT_EQ(coverage(render_views(Mesh{}, default_views(3), 16)).count, 0u);
}

TEST(Render, ViewsSideBySideShareOneScale) {
  const Mesh m = box(1, 2, 0.5);
  const Image img = render_views(m, default_views(3), 80);
  EXPECT_EQ(img.width, 240);
  EXPECT_EQ(img.height, 80);
  for (int i = 0; i < 3; ++i) {
    Image cell(80, 80);
    for (int y = 0; y < 80; ++y) {
      for (int x = 0; x < 80; ++x) cell.set(x, y, img.get(i * 80 + x, y));
    }
    const Coverage c = coverage(cell);
    ASSERT_GT(c.count, 0u) << "view " << i;
    EXPECT_NEAR(0.5 * (c.x0 + c.x1), 39.5, 2.0);
  }
  // Same scale: the top view of a 1 x 2 x 0.5 box is short (0.5 deep) compared with its
  // height in the front-left view.
  Image top(80, 80);
  for (int y = 0; y < 80; ++y) {
    for (int x = 0; x < 80; ++x) top.set(x, y, img.get(160 + x, y));
  }
  const Coverage ct = coverage(top);
  EXPECT_LT(ct.y1 - ct.y0, 40);
  EXPECT_EQ(default_views(1).size(), 1u);
  EXPECT_EQ(default_views(100).size(), 7u);
  EXPECT_EQ(default_views(3)[0].name, "front-left");
  EXPECT_THROW(view_by_name("sideways"), Error);
}

TEST(Render, GridSizesAndCaptions) {
  std::vector<Mesh> meshes(5, box());
  GridOptions opt;
  opt.columns = 2;
  opt.cell_size = 64;
  opt.threads = 2;
  const Image plain = render_grid(meshes, opt);
  EXPECT_EQ(plain.width, 128);
  EXPECT_EQ(plain.height, 3 * 64);
  const std::vector<std::string> caps = {"a.obj\n12 faces", "b.obj\n12 faces", "c", "", "a very long file name indeed.obj"};
  const Image captioned = render_grid(meshes, opt, caps);
  EXPECT_EQ(captioned.width, 128);
  EXPECT_EQ(captioned.height, 3 * (64 + caption_height(64, 2)));
  // Caption text lies in the strip under the first cell; the last (empty) cell of the
  // 2x3 grid stays blank.
  Image strip(64, caption_height(64, 2));
  for (int y = 0; y < strip.height; ++y) {
    for (int x = 0; x < 64; ++x) strip.set(x, y, captioned.get(x, 64 + y));
  }
  EXPECT_GT(coverage(strip).count, 10u);
  Image last(64, 64);
  for (int y = 0; y < 64; ++y) {
    for (int x = 0; x < 64; ++x) last.set(x, y, captioned.get(64 + x, 2 * (64 + caption_height(64, 2)) + y));
  }
  EXPECT_EQ(coverage(last).count, 0u);

  opt.columns = 0;  // about square: 5 -> 3 columns
  EXPECT_EQ(render_grid(meshes, opt).width, 3 * 64);
  opt.columns = 10;  // no wider than the meshes
  EXPECT_EQ(render_grid(meshes, opt).width, 5 * 64);
  const Image empty = render_grid({}, opt);
  EXPECT_EQ(empty.width, 64);
  EXPECT_EQ(empty.height, 64);
  EXPECT_EQ(coverage(empty).count, 0u);
}

TEST(Font, MeasuresAndDraws) {
  EXPECT_EQ(text_width("", 1), 0);
  EXPECT_EQ(text_width("ab", 1), 11);
  EXPECT_EQ(text_width("ab", 2), 22);
  Image img(40, 20);
  draw_text(img, 2, 3, "Hi\x01", kBlack, 2);  // a control character draws as '?'
  const Coverage c = coverage(img);
  EXPECT_GE(c.x0, 2);
  EXPECT_GE(c.y0, 3);
  EXPECT_LE(c.x1, 2 + text_width("Hi?", 2));
  EXPECT_LE(c.y1, 3 + text_height(2));
  EXPECT_GT(c.count, 40u);
  EXPECT_EQ(fit_text("short", 100), "short");
  const std::string fitted = fit_text("a rather long caption", 40);
  EXPECT_LE(text_width(fitted), 40);
  EXPECT_EQ(fitted.substr(fitted.size() - 2), "..");
}

}  // namespace
}  // namespace iflame::render
