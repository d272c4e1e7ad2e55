// A small software rasterizer for looking at meshes: flat Lambert shading with a key and a fill
// light, two-sided (back faces get a warm tint so inverted faces stand out), a z-buffer, the
// visible triangle edges and the silhouette drawn as dark lines, anti-aliased by supersampling.
// Torch-free and dependency-free; output is an Image for write_png().
//
// Conventions: Y is up (ShapeNet). The object's front faces -Z, so the "front" view looks from
// -Z toward +Z, and "front-left" stands in front of the object and to the viewer's left of it.
// Every mesh is normalized like the tokenizer does (bounding-box center to the origin, largest
// side 1) and then framed to fill the image, keeping its aspect ratio.
#pragma once
#include <string>
#include <vector>

#include "mesh/mesh.h"
#include "render/png.h"

namespace iflame::render {

// A camera direction around the object. Azimuth 0 looks at the front (camera on -Z), positive
// azimuth walks the camera toward +X (the viewer's left when facing the front); elevation 90
// looks straight down with the front at the bottom of the image.
struct View {
  std::string name = "front-left";
  double azimuth_deg = 35;
  double elevation_deg = 25;
};

// The named views: front-left (3/4 view), side, top, front, back-right (3/4 from behind),
// back, bottom. Throws iflame::Error listing the names for an unknown one.
View view_by_name(const std::string& name);
const std::vector<std::string>& view_names();
// The first `count` views of {front-left, side, top, front, back-right, back, bottom}
// (count clamped to 1..7).
std::vector<View> default_views(int count);

struct RenderStyle {
  Rgb background = kWhite;
  Rgb front_color{150, 178, 222};  // faces whose winding faces the camera
  Rgb back_color{236, 160, 120};   // faces seen from behind
  Rgb edge_color{38, 44, 58};
  bool edges = true;         // triangle edges and silhouette lines
  double edge_width = 1.0;   // in output pixels (scaled up for images larger than 512)
  int supersample = 3;       // samples per pixel along each axis (1..8)
  double margin = 0.06;      // fraction of the image left empty on each side
  double fov_deg = 28;       // perspective field of view; 0 = orthographic
};

// One view of `mesh` into a width x height image. Meshes with no usable faces (empty, all
// indices out of range, non-finite coordinates, zero-area) give a blank image; never throws
// for bad geometry.
Image render_mesh(const Mesh& mesh, const View& view, int width, int height, const RenderStyle& style = {});

// Several views side by side, each size x size, all at the same scale so the views compare.
Image render_views(const Mesh& mesh, const std::vector<View>& views, int size, const RenderStyle& style = {});

struct GridOptions {
  int columns = 0;         // <= 0: about square (ceil(sqrt(n)))
  int cell_size = 256;     // each cell's image is cell_size x cell_size, plus the caption strip
  View view;               // the one view every cell uses
  RenderStyle style;
  int threads = 0;         // <= 0: the machine's core count, at most 8
};

// Many meshes, one cell each, row by row. `captions` (optional; missing ones are blank) are
// written under each cell in the built-in font, centered, one line per '\n'-separated part,
// each shortened to fit. An empty list gives one blank cell, so the result is always a valid
// image.
Image render_grid(const std::vector<Mesh>& meshes, const GridOptions& options = {},
                  const std::vector<std::string>& captions = {});

// Height of the caption strip render_grid adds under each cell of `cell_size` for captions of
// `lines` lines (0 lines: no strip).
int caption_height(int cell_size, int lines);

}  // namespace iflame::render
