// A written gallery in a real browser: headless Chromium opens index.html as a plain file (the
// way a user double-clicks it), the page must report "loaded N meshes" once three.js has drawn
// them, and the screenshot must show each mesh in its own card. Needs chromium and the viewer
// bundle from scripts/setup.sh; skipped with the reason when either is missing.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "browser_util.h"
#include "render/png.h"
#include "test_paths.h"
#include "util/error.h"
#include "util/fs.h"
#include "view/gallery.h"
#include "view_test_util.h"

namespace iflame {
namespace {

namespace fs = std::filesystem;

using test::find_chromium;
using test::run_shell;
using ShellRun = test::CliRun;

std::string tail(const std::string& path, size_t chars = 3000) {
  std::string text;
  try {
    text = read_file_text(path);
  } catch (const Error&) {
    return "(no " + path + ")";
  }
  return text.size() > chars ? "..." + text.substr(text.size() - chars) : text;
}

// Column runs where the image has pixels of the meshes' blue-grey front faces (page background,
// cards, text and edges are near grey, the skipped-files list brown).
std::vector<std::pair<int, int>> colored_column_runs(const render::Image& img, size_t& colored) {
  std::vector<int> per_column(size_t(img.width), 0);
  colored = 0;
  for (int y = 0; y < img.height; ++y) {
    for (int x = 0; x < img.width; ++x) {
      const render::Rgb c = img.get(x, y);
      if (int(c.b) - int(c.r) > 40 && c.b > 110) {
        ++per_column[size_t(x)];
        ++colored;
      }
    }
  }
  std::vector<std::pair<int, int>> runs;
  for (int x = 0; x < img.width; ++x) {
    if (per_column[size_t(x)] < 3) continue;
    if (!runs.empty() && runs.back().second == x - 1) runs.back().second = x;
    else runs.push_back({x, x});
  }
  return runs;
}

// A gallery of three meshes (and two unreadable files) and the Chromium command to open it.
class ViewBrowserSlow : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string chromium = find_chromium();
    if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (scripts/setup.sh installs it; or set IFLAME_CHROMIUM)";
    std::string viewer;
    try {
      viewer = view::find_viewer_script();
    } catch (const Error& e) {
      GTEST_SKIP() << e.what();
    }
    dir_ = test::temp_dir();
    const std::string meshes = view_test::write_mesh_folder(dir_);
    write_file_atomic(meshes + "/sub/cube2.obj", view_test::kCube);
    view::GalleryOptions opt;
    opt.viewer_script = viewer;
    opt.title = "browser test";
    const view::GalleryReport r = view::write_gallery(collect_mesh_files({meshes}).files, dir_ + "/out", opt);
    ASSERT_EQ(r.meshes.size(), 3u);
    ASSERT_EQ(r.skipped.size(), 2u);
    index_ = r.index_html;
    command_ = test::headless_chromium(chromium, dir_ + "/profile");
  }

  // Runs chromium with `args` on the gallery page; stderr goes to DIR/LOG.
  ShellRun chromium(const std::string& args, const std::string& log) {
    return run_shell(command_ + args + " 'file://" + fs::absolute(index_).string() + "' 2>'" + dir_ + "/" + log + "'");
  }

  std::string dir_, index_, command_;
};

TEST_F(ViewBrowserSlow, ChromiumDrawsEveryMeshFromAPlainFile) {
  ShellRun dom = chromium("--dump-dom", "dom.log");
  ASSERT_EQ(dom.code, 0) << "chromium failed:\n" << tail(dir_ + "/dom.log");
  const size_t status = dom.out.find("id=\"status\"");
  EXPECT_NE(dom.out.find("id=\"status\">loaded 3 meshes<"), std::string::npos)
      << "the page did not report its meshes drawn: " << dom.out.substr(status == std::string::npos ? 0 : status, 200)
      << "\nbrowser log:\n" << tail(dir_ + "/dom.log");

  const std::string shot = dir_ + "/shot.png";
  ShellRun s = chromium("--screenshot='" + shot + "'", "shot.log");
  ASSERT_EQ(s.code, 0) << "chromium failed:\n" << tail(dir_ + "/shot.log");
  ASSERT_TRUE(fs::exists(shot)) << tail(dir_ + "/shot.log");
  const render::Image img = render::decode_png(read_file_bytes(shot), shot);
  ASSERT_EQ(img.width, 1000);
  ASSERT_EQ(img.height, 700);
  size_t colored = 0;
  const auto runs = colored_column_runs(img, colored);
  // Three cards side by side (the grid has four columns at this width), each with its mesh.
  EXPECT_EQ(runs.size(), 3u) << "columns with mesh pixels: " << ::testing::PrintToString(runs) << ", screenshot " << shot;
  EXPECT_GT(colored, 3u * 2000u) << "too few mesh pixels in " << shot;
}

// Orbit by dragging, R, a click opening the large viewer, G and Esc, measured on the WebGL canvas
// by tests/view/viewer_harness.js.
TEST_F(ViewBrowserSlow, DragResetOpenAndWireframeKeys) {
  const std::string html = read_file_text(index_);
  const std::string viewer_tag = "<script src=\"iflame-viewer.js\"></script>\n";
  const size_t at = html.find(viewer_tag);
  ASSERT_NE(at, std::string::npos);
  write_file_atomic(index_, html.substr(0, at + viewer_tag.size()) + "<script src=\"harness.js\"></script>\n" +
                                html.substr(at + viewer_tag.size()));
  write_file_atomic(dir_ + "/out/harness.js", read_file_text(test::source_dir() + "/tests/view/viewer_harness.js"));

  ShellRun dom = chromium("--dump-dom", "dom.log");
  ASSERT_EQ(dom.code, 0) << "chromium failed:\n" << tail(dir_ + "/dom.log");
  const std::string open_tag = "<pre id=\"harness\">";
  const size_t begin = dom.out.find(open_tag), end = dom.out.find("</pre>", begin);
  ASSERT_TRUE(begin != std::string::npos && end != std::string::npos) << "no harness output; browser log:\n" << tail(dir_ + "/dom.log");
  const nlohmann::json m = nlohmann::json::parse(dom.out.substr(begin + open_tag.size(), end - begin - open_tag.size()));
  SCOPED_TRACE(m.dump());
  for (const char* step : {"start", "drag", "reset", "open", "nowire", "close"}) {
    ASSERT_TRUE(m.contains(step) && !m[step].contains("error")) << step;
  }
  const auto& start = m["start"];
  EXPECT_GT(start["blue"].get<int>(), 1000);
  EXPECT_GT(start["dark"].get<int>(), 30);  // the wireframe is on at first
  EXPECT_TRUE(start["wireframe"].get<bool>());
  EXPECT_EQ(start["open"], -1);
  EXPECT_GT(m["drag"]["changed"].get<int>(), 1000);  // the drag turned the mesh
  EXPECT_LT(m["reset"]["changed"].get<int>(), 20);   // R: back to the first picture
  // A click: the large viewer shows the first mesh, bigger.
  EXPECT_EQ(m["open"]["open"], 0);
  EXPECT_GT(m["open"]["width"].get<int>(), 300);
  EXPECT_GT(m["open"]["blue"].get<int>(), 2 * start["blue"].get<int>());
  EXPECT_GT(m["open"]["dark"].get<int>(), 30);
  // G: no edges, same faces.
  EXPECT_FALSE(m["nowire"]["wireframe"].get<bool>());
  EXPECT_LT(m["nowire"]["dark"].get<int>(), m["open"]["dark"].get<int>() / 4);
  EXPECT_GT(m["nowire"]["blue"].get<int>(), m["open"]["blue"].get<int>() * 9 / 10);
  // G again and Esc: the grid as it was.
  EXPECT_EQ(m["close"]["open"], -1);
  EXPECT_TRUE(m["close"]["wireframe"].get<bool>());
  EXPECT_LT(m["close"]["changed"].get<int>(), 20);
}

}  // namespace
}  // namespace iflame
