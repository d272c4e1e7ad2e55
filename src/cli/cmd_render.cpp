// iflame render MESH... --out PNG: pictures of meshes (several views of one mesh, or a grid of
// many), and iflame render --curve LOG.jsonl --out PNG: training curves.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "dataset/isolated_load.h"
#include "mesh/load.h"
#include "render/plot.h"
#include "render/png.h"
#include "render/render.h"
#include "util/args.h"
#include "util/error.h"

namespace iflame::cli {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> split_keys(const std::string& csv) {
  std::vector<std::string> keys;
  size_t start = 0;
  while (start <= csv.size()) {
    size_t end = csv.find(',', start);
    if (end == std::string::npos) end = csv.size();
    std::string k = csv.substr(start, end - start);
    k.erase(0, k.find_first_not_of(" \t"));
    k.erase(k.find_last_not_of(" \t") + 1);
    if (!k.empty()) keys.push_back(k);
    start = end + 1;
  }
  return keys;
}

std::string plural(size_t n, const std::string& word, const std::string& words = "") {
  return std::to_string(n) + " " + (n == 1 ? word : words.empty() ? word + "s" : words);
}

int run_curve(const std::string& log_path, const std::string& out, const std::string& keys_csv, const std::string& x_key,
              bool log_y, int64_t width, int64_t height) {
  if (width < 160 || height < 120 || width > 8192 || height > 8192) throw Error("--width/--height must be within 160x120 .. 8192x8192");
  const render::CurveLog log = render::read_curve_log(log_path, split_keys(keys_csv), x_key);
  if (log.bad_lines) {
    std::fprintf(stderr, "iflame render: warning: %s: skipped %s that %s not a JSON object\n", log_path.c_str(),
                 plural(log.bad_lines, "line").c_str(), log.bad_lines == 1 ? "is" : "are");
  }
  render::PlotOptions opt;
  opt.width = int(width);
  opt.height = int(height);
  opt.log_y = log_y;
  opt.title = fs::path(log_path).filename().string();
  opt.x_label = x_key;
  if (log.series.size() == 1) opt.y_label = log.series[0].name;
  const render::Image img = render::plot_lines(log.series, opt);
  render::write_png(out, img);
  std::string keys;
  for (const auto& s : log.series) keys += (keys.empty() ? "" : ", ") + s.name + " (" + std::to_string(s.x.size()) + ")";
  std::printf("wrote %s (%dx%d): %s against %s\n", out.c_str(), img.width, img.height, keys.c_str(), x_key.c_str());
  return 0;
}

}  // namespace

int run_render(int argc, char** argv) {
  // The plotting mode takes no mesh arguments; decide before building the parser.
  bool curve_mode = false;
  for (int i = 0; i < argc; ++i) curve_mode = curve_mode || std::strcmp(argv[i], "--curve") == 0 || std::strncmp(argv[i], "--curve=", 8) == 0;

  std::vector<std::string> inputs;
  std::string out, curve, keys_csv, view_name = "front-left", x_key = "step";
  int64_t size = 512, views = 3, grid = 0, supersample = 3, width = 900, height = 540;
  bool no_edges = false, no_captions = false, log_y = false;
  ArgParser args("render",
                 "Renders meshes to a PNG: flat-shaded with the visible triangle edges, back faces (inverted\n"
                 "winding) in a warm tint, Y up, the object's front facing -Z.\n"
                 "  one mesh file          -> its --views side by side (front-left, side, top, ...)\n"
                 "  several meshes/folders -> a grid, one cell per mesh (the --view), captioned with the\n"
                 "                           file name and face count; folders are searched recursively\n"
                 "Meshes that cannot be read are skipped with a message naming the file.\n\n"
                 "With --curve LOG.jsonl it plots a training log instead: each line a JSON object; the --keys\n"
                 "are drawn against --x (lines missing a key are skipped for that key).\n\n"
                 "examples:\n"
                 "  iflame render chair.obj --out chair.png --views 4\n"
                 "  iflame render samples/ --out samples.png --grid 8 --size 256\n"
                 "  iflame render --curve train.jsonl --out loss.png --keys loss,val_loss --log-y");
  if (!curve_mode) args.positional_list("MESH", &inputs, "mesh files or folders of them (any format `iflame tokenize` reads)");
  args.option("out", &out, "the PNG to write (required)")
      .option("size", &size, "pixels per view, or per grid cell")
      .option("views", &views, "one mesh: how many views, 1..7, taken in the order front-left, side, top, front, back-right, back, bottom")
      .option("grid", &grid, "grid columns, also for a single mesh; 0: one mesh gives its views, several an about square grid")
      .option("view", &view_name, "the view grid cells use: front-left, side, top, front, back-right, back or bottom")
      .flag("no-edges", &no_edges, "shading only, no triangle edges or outlines")
      .flag("no-captions", &no_captions, "no file name / face count under grid cells")
      .option("supersample", &supersample, "anti-aliasing: samples per pixel along each axis, 1..8")
      .option("curve", &curve, "plot this JSONL training log instead of rendering meshes")
      .option("keys", &keys_csv, "with --curve: comma-separated keys to plot (default: every numeric key containing \"loss\", else all)")
      .option("x", &x_key, "with --curve: the key for the x axis")
      .flag("log-y", &log_y, "with --curve: logarithmic y axis")
      .option("width", &width, "with --curve: image width")
      .option("height", &height, "with --curve: image height");
  if (!args.parse(argc, argv)) return 0;
  if (out.empty()) throw Error("render: --out PNG is required (see `iflame render --help`)");
  if (curve_mode) return run_curve(curve, out, keys_csv, x_key, log_y, width, height);

  if (size < 16 || size > 8192) throw Error("--size must be between 16 and 8192");
  if (views < 1 || views > 7) throw Error("--views must be between 1 and 7");
  if (grid < 0) throw Error("--grid must be a positive number of columns");
  if (supersample < 1 || supersample > 8) throw Error("--supersample must be between 1 and 8");
  render::RenderStyle style;
  style.edges = !no_edges;
  style.supersample = int(supersample);
  const render::View grid_view = render::view_by_name(view_name);

  const MeshFileListing listing = collect_mesh_files(inputs);
  for (const std::string& p : listing.problems) std::fprintf(stderr, "iflame render: warning: %s\n", p.c_str());
  const std::vector<MeshFile>& files = listing.files;
  std::vector<Mesh> meshes;
  std::vector<std::string> captions;
  size_t skipped = listing.missing;
  for (const MeshFile& in : files) {
    try {
      meshes.push_back(load_untrusted_mesh(in.path));
      captions.push_back(in.name + "\n" + plural(meshes.back().faces.size(), "face"));
    } catch (const std::exception& e) {
      const std::string msg = e.what();
      // iflame::Error messages already start with the path.
      std::fprintf(stderr, "iflame render: skipping %s\n",
                   (msg.rfind(in.path, 0) == 0 ? msg : in.path + ": " + msg).c_str());
      ++skipped;
    }
  }
  if (meshes.empty()) throw Error("no mesh could be loaded" + (skipped ? " (" + plural(skipped, "input") + " skipped)" : std::string()));

  const bool single = grid == 0 && inputs.size() == 1 && files.size() == 1 && !fs::is_directory(inputs[0]);
  render::Image img;
  if (single) {
    img = render::render_views(meshes[0], render::default_views(int(views)), int(size), style);
  } else {
    render::GridOptions opt;
    opt.columns = int(grid);
    opt.cell_size = int(size);
    opt.view = grid_view;
    opt.style = style;
    img = render::render_grid(meshes, opt, no_captions ? std::vector<std::string>{} : captions);
  }
  render::write_png(out, img);
  std::printf("wrote %s (%dx%d): %s%s\n", out.c_str(), img.width, img.height,
              single ? (plural(size_t(views), "view") + " of " + files[0].path).c_str() : plural(meshes.size(), "mesh", "meshes").c_str(),
              skipped ? (", " + plural(skipped, "input") + " skipped").c_str() : "");
  return 0;
}

}  // namespace iflame::cli
