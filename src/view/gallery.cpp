#include "view/gallery.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "dataset/isolated_load.h"
#include "mesh/load.h"
#include "util/error.h"
#include "util/fs.h"

#ifndef IFLAME_DEFAULT_WEB_DIR
#define IFLAME_DEFAULT_WEB_DIR ""
#endif

namespace iflame::view {

namespace fs = std::filesystem;

namespace {

// A web/ folder holds the script in dist/; a gallery or dist/ folder holds it directly.
std::string script_in(const std::string& dir) {
  std::error_code ec;
  for (const fs::path& p : {fs::path(dir) / "dist" / kViewerScript, fs::path(dir) / kViewerScript}) {
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  return "";
}

void append_le32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(char((v >> (8 * i)) & 0xff));
}

std::string plural(size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// "chair.obj: reason" -> "reason" (iflame::Error messages already start with the path).
std::string reason_without_path(const std::string& msg, const std::string& path) {
  if (msg.rfind(path + ": ", 0) == 0) return msg.substr(path.size() + 2);
  return msg;
}

const char* kStyle = R"css(
* { box-sizing: border-box; }
body { margin: 0; background: #eceff3; color: #1c2430; font: 14px/1.4 system-ui, sans-serif; }
header { padding: 14px 18px 4px; }
h1 { font-size: 20px; margin: 0 0 4px; }
header p { margin: 2px 0; color: #4a5566; }
kbd { border: 1px solid #b8c0cc; border-bottom-width: 2px; border-radius: 3px; padding: 0 4px; background: #fff; font-size: 12px; }
#status { font-size: 12px; color: #6a7586; }
#grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 12px; padding: 12px 18px; }
.card { background: #fff; border-radius: 8px; box-shadow: 0 1px 3px rgba(0, 0, 0, 0.12); overflow: hidden; }
.card .view { aspect-ratio: 1 / 1; cursor: grab; }
.caption { padding: 6px 10px 8px; border-top: 1px solid #e3e7ec; }
.name { display: block; font-weight: 600; overflow-wrap: anywhere; }
.counts { color: #5a6577; font-size: 12px; }
#skipped { padding: 4px 18px 18px; color: #7a3b1c; }
#skipped h2 { font-size: 15px; margin: 8px 0 4px; }
#skipped li { overflow-wrap: anywhere; }
#overlay { position: fixed; inset: 0; z-index: 2; background: rgba(28, 36, 48, 0.55); display: flex; align-items: center; justify-content: center; }
#overlay[hidden] { display: none; }
#overlay .box { background: #fff; border-radius: 8px; overflow: hidden; }
#overlay .view { width: min(88vw, 82vh); height: min(88vw, 82vh); cursor: grab; }
#canvas { position: fixed; left: 0; top: 0; width: 100vw; height: 100vh; z-index: 3; pointer-events: none; }
)css";

}  // namespace

std::string find_viewer_script(const std::string& assets_dir) {
  const char* hint = "the three.js viewer is not built; run scripts/setup.sh (npm ci and npm run build in web/)";
  if (!assets_dir.empty()) {
    const std::string found = script_in(assets_dir);
    if (found.empty()) throw Error((fs::path(assets_dir) / "dist" / kViewerScript).string(), std::string("not found: ") + hint);
    return found;
  }
  const char* env = std::getenv("IFLAME_WEB_DIR");
  if (env && *env) {
    const std::string found = script_in(env);
    if (found.empty()) throw Error((fs::path(env) / "dist" / kViewerScript).string(), std::string("not found (from $IFLAME_WEB_DIR): ") + hint);
    return found;
  }
  const std::string compiled = IFLAME_DEFAULT_WEB_DIR;
  if (compiled.empty()) throw Error(std::string("no web assets folder is known: pass --assets WEB_DIR or set IFLAME_WEB_DIR; ") + hint);
  const std::string found = script_in(compiled);
  if (found.empty()) throw Error((fs::path(compiled) / "dist" / kViewerScript).string(), std::string("not found: ") + hint);
  return found;
}

std::string base64_encode(const void* data, size_t size) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = static_cast<const uint8_t*>(data);
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    const uint32_t v = uint32_t(p[i]) << 16 | uint32_t(p[i + 1]) << 8 | p[i + 2];
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  if (i < size) {
    const bool two = i + 1 < size;
    const uint32_t v = uint32_t(p[i]) << 16 | (two ? uint32_t(p[i + 1]) << 8 : 0u);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(two ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::string mesh_record_js(const Mesh& mesh, const std::string& id, const std::string& name) {
  std::string positions;
  positions.reserve(mesh.vertices.size() * 12);
  for (const Vec3& v : mesh.vertices) {
    for (double c : v) {
      if (!(std::fabs(c) <= double(std::numeric_limits<float>::max()))) {
        throw Error(name, "a coordinate (" + std::to_string(c) + ") does not fit in float32");
      }
      const float f = float(c);
      uint32_t bits;
      std::memcpy(&bits, &f, 4);
      append_le32(positions, bits);
    }
  }
  const bool narrow = mesh.vertices.size() <= 65536;
  std::string indices;
  indices.reserve(mesh.faces.size() * 3 * (narrow ? 2 : 4));
  for (const Tri& t : mesh.faces) {
    for (int32_t c : t) {
      if (narrow) {
        indices.push_back(char(c & 0xff));
        indices.push_back(char((c >> 8) & 0xff));
      } else {
        append_le32(indices, uint32_t(c));
      }
    }
  }
  nlohmann::json rec = {{"id", id},
                        {"name", name},
                        {"vertices", mesh.vertices.size()},
                        {"faces", mesh.faces.size()},
                        {"index_bits", narrow ? 16 : 32},
                        {"positions", base64_encode(positions.data(), positions.size())},
                        {"indices", base64_encode(indices.data(), indices.size())}};
  // File names need not be UTF-8; replace what is not rather than fail.
  return "(window.iflameMeshes = window.iflameMeshes || []).push(" +
         rec.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + ");\n";
}

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

GalleryReport write_gallery(const std::vector<MeshFile>& files, const std::string& out_dir, const GalleryOptions& options) {
  GalleryReport report;
  const fs::path out(out_dir), mesh_dir = out / "meshes";
  std::error_code ec;
  fs::create_directories(mesh_dir, ec);
  if (ec || !fs::is_directory(mesh_dir)) throw Error(mesh_dir.string(), "cannot create the folder: " + (ec ? ec.message() : "not a folder"));
  // An older gallery's mesh scripts would otherwise linger next to the new ones.
  for (fs::directory_iterator it(mesh_dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code rec;
    if (it->path().extension() == ".js" && it->is_regular_file(rec)) fs::remove(it->path(), rec);
  }

  const std::vector<uint8_t> viewer = read_file_bytes(options.viewer_script);
  write_file_atomic((out / kViewerScript).string(), viewer.data(), viewer.size());

  std::string cards, scripts;
  size_t next = 0;
  for (; next < files.size() && (options.limit == 0 || report.meshes.size() < options.limit); ++next) {
    const MeshFile& f = files[next];
    Mesh mesh;
    std::string js;
    // Appended rather than "m" + std::to_string(...): GCC 12 at -O3 -std=c++20 reports a false
    // -Wrestrict overlap in operator+(const char*, string&&).
    std::string id = "m";
    id += std::to_string(report.meshes.size());
    try {
      mesh = load_untrusted_mesh(f.path);
      js = mesh_record_js(mesh, id, f.name);
    } catch (const std::exception& e) {
      report.skipped.push_back({f.path, reason_without_path(e.what(), f.path)});
      continue;
    }
    char file_name[32];
    std::snprintf(file_name, sizeof file_name, "%04zu.js", report.meshes.size());
    const std::string data_file = std::string("meshes/") + file_name;
    write_file_atomic((out / data_file).string(), js);
    report.meshes.push_back({f.name, data_file, mesh.vertices.size(), mesh.faces.size()});
    cards += "<div class=\"card\" data-mesh=\"" + id + "\"><div class=\"view\"></div><div class=\"caption\"><span class=\"name\">" +
             html_escape(f.name) + "</span><span class=\"counts\">" + plural(mesh.faces.size(), "face", "faces") + " &middot; " +
             plural(mesh.vertices.size(), "vertex", "vertices") + "</span></div></div>\n";
    scripts += "<script src=\"" + data_file + "\"></script>\n";
  }
  report.not_shown = files.size() - next;

  const std::string title = options.title.empty() ? "iflame view" : options.title;
  std::string html =
      "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
      html_escape(title) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n<header>\n<h1>" + html_escape(title) +
      "</h1>\n<p>" + plural(report.meshes.size(), "mesh", "meshes");
  if (!report.skipped.empty()) html += ", " + plural(report.skipped.size(), "file", "files") + " skipped";
  if (report.not_shown) html += ", " + plural(report.not_shown, "more file", "more files") + " not shown (--limit)";
  html +=
      ". Drag a card to orbit, click it to enlarge (wheel: zoom, right-drag: pan, <kbd>Esc</kbd>: close); "
      "<kbd>G</kbd> toggles the wireframe, <kbd>R</kbd> resets the view.</p>\n"
      "<p id=\"status\">loading (needs JavaScript and WebGL)</p>\n</header>\n<main id=\"grid\">\n" +
      cards + "</main>\n";
  if (!report.skipped.empty()) {
    html += "<section id=\"skipped\">\n<h2>Skipped: " + plural(report.skipped.size(), "unreadable file", "unreadable files") + "</h2>\n<ul>\n";
    for (const SkippedMesh& s : report.skipped) html += "<li><code>" + html_escape(s.path) + "</code>: " + html_escape(s.reason) + "</li>\n";
    html += "</ul>\n</section>\n";
  }
  html += "<div id=\"overlay\" hidden><div class=\"box\"><div class=\"view\"></div><div class=\"caption\"></div></div></div>\n"
          "<canvas id=\"canvas\"></canvas>\n" +
          scripts + "<script src=\"" + std::string(kViewerScript) + "\"></script>\n</body>\n</html>\n";
  report.index_html = (out / "index.html").string();
  write_file_atomic(report.index_html, html);
  return report;
}

}  // namespace iflame::view
