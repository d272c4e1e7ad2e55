// The files `iflame view` writes: mesh data that decodes back to the loaded meshes, the page's
// cards, unreadable files skipped and listed, --limit, rewrites, and finding the viewer script.
#include "view/gallery.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "mesh/load.h"
#include "test_paths.h"
#include "util/error.h"
#include "util/fs.h"
#include "view_test_util.h"

namespace iflame {
namespace {

namespace fs = std::filesystem;
using namespace view_test;

// A stand-in for the bundled viewer: these tests check the files, not the browser.
std::string fake_viewer(const std::string& dir) {
  const std::string p = dir + "/fake-web/dist/iflame-viewer.js";
  fs::create_directories(fs::path(p).parent_path());
  write_file_atomic(p, "/* viewer */\n");
  return p;
}

size_t count_js(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().extension() == ".js";
  return n;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(ViewBase64, Rfc4648Vectors) {
  const char* plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  const char* coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (int i = 0; i < 7; ++i) EXPECT_EQ(view::base64_encode(plain[i], std::strlen(plain[i])), coded[i]) << plain[i];
  const uint8_t high[] = {0xff, 0xfe, 0x00, 0x80};
  EXPECT_EQ(view::base64_encode(high, 4), "//4AgA==");
}

TEST(ViewGallery, MeshDataRoundTrips) {
  const std::string dir = test::temp_dir();
  const std::string meshes = write_mesh_folder(dir);
  // More than 65536 vertices: the indices need 32 bits.
  std::string big;
  const int tris = 22000;
  for (int i = 0; i < tris; ++i) big += "v " + std::to_string(i) + " 0 0.3\nv " + std::to_string(i) + ".5 1 0\nv " + std::to_string(i) + " 0 1.7\n";
  for (int i = 0; i < tris; ++i) big += "f " + std::to_string(3 * i + 1) + " " + std::to_string(3 * i + 2) + " " + std::to_string(3 * i + 3) + "\n";
  write_file_atomic(meshes + "/big.obj", big);

  view::GalleryOptions opt;
  opt.viewer_script = fake_viewer(dir);
  const MeshFileListing listing = collect_mesh_files({meshes});
  EXPECT_TRUE(listing.problems.empty());
  ASSERT_EQ(listing.files.size(), 5u);  // notes.txt is not a mesh
  const view::GalleryReport r = view::write_gallery(listing.files, dir + "/out", opt);

  ASSERT_EQ(r.meshes.size(), 3u);
  EXPECT_EQ(r.meshes[0].name, "a&b<c>.off");
  EXPECT_EQ(r.meshes[1].name, "big.obj");
  EXPECT_EQ(r.meshes[2].name, "cube.obj");
  EXPECT_EQ(r.meshes[2].faces, 12u);
  EXPECT_EQ(r.meshes[2].vertices, 8u);
  const char* sources[] = {"a&b<c>.off", "big.obj", "cube.obj"};
  const int bits[] = {16, 32, 16};
  for (size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE(sources[i]);
    const MeshScript s = read_mesh_script(dir + "/out/" + r.meshes[i].data_file);
    EXPECT_EQ(s.record.at("name"), r.meshes[i].name);
    EXPECT_EQ(s.record.at("id"), "m" + std::to_string(i));
    EXPECT_EQ(s.record.at("index_bits"), bits[i]);
    expect_same_mesh(s, load_mesh(meshes + "/" + sources[i]), sources[i]);
  }
  // The page: one card per mesh (names escaped), its data script, and the copied viewer last.
  const std::string html = read_file_text(r.index_html);
  EXPECT_EQ(r.index_html, dir + "/out/index.html");
  EXPECT_EQ(count(html, "<div class=\"card\""), 3u);
  EXPECT_NE(html.find("a&amp;b&lt;c&gt;.off"), std::string::npos);
  EXPECT_EQ(html.find("a&b<c>"), std::string::npos);
  EXPECT_NE(html.find("data-mesh=\"m2\""), std::string::npos);
  EXPECT_NE(html.find("12 faces &middot; 8 vertices"), std::string::npos);
  EXPECT_NE(html.find("4 faces &middot; 4 vertices"), std::string::npos);
  for (const auto& m : r.meshes) EXPECT_NE(html.find("<script src=\"" + m.data_file + "\">"), std::string::npos) << m.data_file;
  EXPECT_GT(html.find("<script src=\"iflame-viewer.js\">"), html.find("<script src=\"" + r.meshes[2].data_file));
  EXPECT_NE(html.find("id=\"status\""), std::string::npos);
  EXPECT_EQ(read_file_text(dir + "/out/iflame-viewer.js"), "/* viewer */\n");
}

TEST(ViewGallery, SkipsUnreadableFilesAndListsThem) {
  const std::string dir = test::temp_dir();
  const std::string meshes = write_mesh_folder(dir);
  // Finite in float64 but not in float32: skipped too, not written as Infinity.
  write_file_atomic(meshes + "/huge.obj", "v 0 0 0\nv 1e39 0 0\nv 0 1 0\nf 1 2 3\n");
  view::GalleryOptions opt;
  opt.viewer_script = fake_viewer(dir);
  const view::GalleryReport r = view::write_gallery(collect_mesh_files({meshes, dir + "/missing"}).files, dir + "/out", opt);

  ASSERT_EQ(r.meshes.size(), 2u);
  ASSERT_EQ(r.skipped.size(), 3u);
  EXPECT_EQ(r.skipped[0].path, meshes + "/broken.obj");
  EXPECT_EQ(r.skipped[1].path, meshes + "/huge.obj");
  EXPECT_EQ(r.skipped[2].path, meshes + "/sub/garbage.ply");
  EXPECT_NE(r.skipped[1].reason.find("float32"), std::string::npos) << r.skipped[1].reason;
  for (const auto& s : r.skipped) {
    EXPECT_FALSE(s.reason.empty()) << s.path;
    EXPECT_NE(s.reason.rfind(s.path, 0), 0u) << "the reason repeats the path: " << s.reason;
  }
  EXPECT_EQ(count_js(dir + "/out/meshes"), 2u);
  const std::string html = read_file_text(r.index_html);
  EXPECT_NE(html.find("id=\"skipped\""), std::string::npos);
  EXPECT_NE(html.find("3 unreadable files"), std::string::npos);
  for (const auto& s : r.skipped) EXPECT_NE(html.find("<code>" + s.path + "</code>: " + view::html_escape(s.reason)), std::string::npos) << s.path;
  EXPECT_EQ(count(html, "<div class=\"card\""), 2u);

  const MeshFileListing listing = collect_mesh_files({meshes, dir + "/missing", dir + "/out"});
  ASSERT_EQ(listing.problems.size(), 2u);
  EXPECT_EQ(listing.problems[0], dir + "/missing: no such file or folder");
  EXPECT_EQ(listing.problems[1], dir + "/out: no mesh files in this folder");
  // A file given directly keeps its file name.
  const MeshFileListing one = collect_mesh_files({meshes + "/sub/garbage.ply"});
  ASSERT_EQ(one.files.size(), 1u);
  EXPECT_EQ(one.files[0].name, "garbage.ply");
}

TEST(ViewGallery, LimitAndRewriteReplaceOldMeshes) {
  const std::string dir = test::temp_dir();
  const std::string meshes = write_mesh_folder(dir);
  view::GalleryOptions opt;
  opt.viewer_script = fake_viewer(dir);
  const auto files = collect_mesh_files({meshes}).files;
  ASSERT_EQ(files.size(), 4u);
  view::GalleryReport r = view::write_gallery(files, dir + "/out", opt);
  EXPECT_EQ(r.meshes.size(), 2u);
  EXPECT_EQ(r.not_shown, 0u);
  EXPECT_EQ(count_js(dir + "/out/meshes"), 2u);

  // The limit counts loaded meshes: broken.obj is skipped on the way to the second.
  opt.limit = 2;
  r = view::write_gallery(files, dir + "/out", opt);
  EXPECT_EQ(r.meshes.size(), 2u);
  EXPECT_EQ(r.skipped.size(), 1u);
  EXPECT_EQ(r.not_shown, 1u);
  EXPECT_NE(read_file_text(r.index_html).find("1 more file not shown"), std::string::npos);

  opt.limit = 1;
  r = view::write_gallery(files, dir + "/out", opt);
  ASSERT_EQ(r.meshes.size(), 1u);
  EXPECT_EQ(r.not_shown, 3u);
  EXPECT_EQ(count_js(dir + "/out/meshes"), 1u);  // the second mesh of the earlier run is gone
  EXPECT_EQ(count(read_file_text(r.index_html), "<div class=\"card\""), 1u);
}

TEST(ViewAssets, FindsTheBundleOrNamesTheMissingFile) {
  const std::string dir = test::temp_dir();
  fs::create_directories(dir + "/empty");
  try {
    view::find_viewer_script(dir + "/empty");
    FAIL() << "no error for a folder without the viewer";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(dir + "/empty/dist/iflame-viewer.js"), std::string::npos) << msg;
    EXPECT_NE(msg.find("scripts/setup.sh"), std::string::npos) << msg;
  }
  // The web/ folder (script in dist/) or the folder holding the script.
  const std::string script = fake_viewer(dir);
  EXPECT_EQ(view::find_viewer_script(dir + "/fake-web"), script);
  EXPECT_EQ(view::find_viewer_script(dir + "/fake-web/dist"), script);

  // $IFLAME_WEB_DIR when no folder is given.
  const char* old = std::getenv("IFLAME_WEB_DIR");
  const std::string saved = old ? old : "";
  ::setenv("IFLAME_WEB_DIR", (dir + "/fake-web").c_str(), 1);
  EXPECT_EQ(view::find_viewer_script(), script);
  ::setenv("IFLAME_WEB_DIR", (dir + "/empty").c_str(), 1);
  EXPECT_THROW(view::find_viewer_script(), Error);
  if (old) ::setenv("IFLAME_WEB_DIR", saved.c_str(), 1); else ::unsetenv("IFLAME_WEB_DIR");
}

}  // namespace
}  // namespace iflame
