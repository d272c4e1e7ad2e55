// iflame view DIR... [--out HTML_DIR] [--limit N]: a static HTML gallery of meshes with an
// interactive three.js viewer (orbit, zoom, G wireframe, R reset) that works opened as a file.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "util/args.h"
#include "util/error.h"
#include "view/gallery.h"

namespace iflame::cli {

namespace fs = std::filesystem;

int run_view(int argc, char** argv) {
  std::vector<std::string> inputs;
  std::string out, assets, title;
  int64_t limit = 200;
  ArgParser args("view",
                 "Writes a static HTML gallery of meshes: a grid of cards (file name, face and vertex counts),\n"
                 "each an interactive 3D view (three.js). Drag a card to orbit it, click it for a large viewer\n"
                 "(wheel: zoom, right-drag: pan, Esc: close); G toggles the wireframe, R resets the view.\n"
                 "Folders are searched recursively; files that cannot be read are skipped with a message\n"
                 "naming them and listed on the page. The folder written is self-contained: open\n"
                 "OUT/index.html directly (file://), or copy the folder anywhere.\n\n"
                 "The viewer script (three.js bundled by scripts/setup.sh into web/dist/) is found via\n"
                 "--assets, else $IFLAME_WEB_DIR, else the source tree's web/ folder.\n\n"
                 "examples:\n"
                 "  iflame view work/samples --out samples-view     # then open samples-view/index.html\n"
                 "  iflame view meshes/ --limit 50");
  args.positional_list("DIR", &inputs, "folders of meshes, or mesh files (any format `iflame tokenize` reads)")
      .option("out", &out, "the gallery folder to write (default: <name of the first DIR>-view)")
      .option("limit", &limit, "at most this many meshes on the page, in sorted order (0: all)")
      .option("title", &title, "the page heading (default: the input paths)")
      .option("assets", &assets, "the web/ folder holding dist/iflame-viewer.js");
  if (!args.parse(argc, argv)) return 0;
  if (inputs.empty()) throw Error("view: give a folder of meshes (see `iflame view --help`)");
  if (limit < 0) throw Error("--limit must be 0 (all) or a positive number of meshes");

  view::GalleryOptions opt;
  // Before reading any mesh, so a missing setup fails fast.
  opt.viewer_script = view::find_viewer_script(assets);
  opt.limit = size_t(limit);
  if (title.empty()) {
    for (const std::string& in : inputs) title += (title.empty() ? "" : ", ") + in;
  }
  opt.title = title;
  if (out.empty()) {
    fs::path first = fs::path(inputs[0]).lexically_normal();
    if (first.filename().empty()) first = first.parent_path();  // "dir/" -> "dir"
    std::string stem = first.stem().string();
    if (stem.empty() || stem == "." || stem == "..") stem = "meshes";
    out = stem + "-view";
  }

  const MeshFileListing listing = collect_mesh_files(inputs);
  for (const std::string& p : listing.problems) std::fprintf(stderr, "iflame view: warning: %s\n", p.c_str());
  if (listing.files.empty()) throw Error("no mesh files found in " + title);

  const view::GalleryReport report = view::write_gallery(listing.files, out, opt);
  for (const view::SkippedMesh& s : report.skipped) std::fprintf(stderr, "iflame view: skipping %s: %s\n", s.path.c_str(), s.reason.c_str());
  if (report.meshes.empty()) {
    throw Error("no mesh could be loaded (" + std::to_string(report.skipped.size()) + " unreadable); the page " + report.index_html +
                " only lists them");
  }
  std::error_code ec;
  const fs::path abs = fs::absolute(report.index_html, ec);
  std::printf("wrote %s: %zu mesh%s", report.index_html.c_str(), report.meshes.size(), report.meshes.size() == 1 ? "" : "es");
  if (!report.skipped.empty()) std::printf(", %zu skipped", report.skipped.size());
  if (report.not_shown) std::printf(", %zu more not shown (--limit %lld)", report.not_shown, (long long)limit);
  std::printf("\nopen file://%s\n", (ec ? fs::path(report.index_html) : abs).generic_string().c_str());
  return 0;
}

}  // namespace iflame::cli
