// Warzone 2100 model (.pie, PIE 2/3), text, one record per line, whitespace-separated:
//   PIE 2|3
//   ... (TYPE, TEXTURE, LEVEL, NORMALS, CONNECTORS, ... are skipped line by line; LEVELS n is
//        checked against the number of POINTS blocks)
//   POINTS n            then n lines "x y z"
//   POLYGONS n          then n lines "flags count i0 i1 ... [texture coordinates ...]"
// A file holds one POINTS/POLYGONS pair per level; polygon indices are 0-based within the
// preceding POINTS block. All levels go into one mesh; polygons are fan-triangulated.
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "mesh/formats/byte_reader.h"
#include "mesh/readers.h"

namespace iflame::readers {
namespace {

// The ASCII whitespace of Python's str.split, which the corpus converter tokenizes with.
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\v' || c == '\f' || (c >= '\x1c' && c <= '\x1f'); }

// Lines end at "\n", "\r\n" or a lone "\r" (files come from several editors).
class Lines {
 public:
  explicit Lines(const std::vector<uint8_t>& bytes)
      : text_(reinterpret_cast<const char*>(bytes.data()), bytes.size()) {}

  // Splits the next line into tokens; false at the end of the file.
  bool next(std::vector<std::string_view>& tokens) {
    if (pos_ >= text_.size()) return false;
    ++number_;
    size_t end = pos_;
    while (end < text_.size() && text_[end] != '\n' && text_[end] != '\r') ++end;
    tokens.clear();
    for (size_t i = pos_; i < end;) {
      while (i < end && is_space(text_[i])) ++i;
      const size_t start = i;
      while (i < end && !is_space(text_[i])) ++i;
      if (i > start) tokens.push_back(text_.substr(start, i - start));
    }
    pos_ = end;
    if (pos_ < text_.size() && text_[pos_++] == '\r' && pos_ < text_.size() && text_[pos_] == '\n') ++pos_;
    return true;
  }
  size_t number() const { return number_; }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  size_t number_ = 0;
};

class PieReader {
 public:
  PieReader(const std::vector<uint8_t>& bytes, const std::string& path) : lines_(bytes), path_(path) {}

  Mesh read() {
    if (!lines_.next(tokens_)) throw Error(path_, "empty file (expected a Warzone 2100 PIE model)");
    if (tokens_.empty()) fail_here("expected a 'PIE 2' or 'PIE 3' header");
    if (tokens_[0] != "PIE") fail_here("bad magic: not a Warzone 2100 PIE model (expected 'PIE 2' or 'PIE 3')");
    if (tokens_.size() < 2) fail_here("the PIE header has no version");
    const int64_t version = integer(tokens_[1], "the PIE version");
    if (version != 2 && version != 3) {
      fail_here("unsupported PIE version " + std::to_string(version) + " (expected 2 or 3)");
    }

    // Text cannot reveal truncation at a line boundary, so the block structure is checked: every
    // POINTS block needs its POLYGONS, and LEVELS (when given) must match the POINTS blocks.
    int64_t levels = -1;
    size_t points_blocks = 0, points_line = 0;
    bool awaiting_polygons = false;
    size_t base = 0, block_size = 0;
    while (lines_.next(tokens_)) {
      if (tokens_.empty()) continue;
      if (tokens_[0] == "LEVELS" && tokens_.size() >= 2) {
        levels = integer(tokens_[1], "the level count");
      } else if (tokens_[0] == "POINTS") {
        if (awaiting_polygons) {
          fail_here("the POINTS block at line " + std::to_string(points_line) + " has no POLYGONS");
        }
        points_line = lines_.number();
        base = mesh_.vertices.size();
        block_size = count("POINTS");
        read_points(block_size);
        ++points_blocks;
        awaiting_polygons = true;
      } else if (tokens_[0] == "POLYGONS") {
        if (points_blocks == 0) fail_here("POLYGONS before any POINTS block");
        read_polygons(count("POLYGONS"), base, block_size);
        awaiting_polygons = false;
      }
    }
    if (awaiting_polygons) {
      throw Error(path_, "truncated: the POINTS block at line " + std::to_string(points_line) + " has no POLYGONS");
    }
    if (levels >= 0 && uint64_t(levels) != points_blocks) {
      throw Error(path_, "LEVELS says " + std::to_string(levels) + " levels but the file has " +
                             std::to_string(points_blocks) + " POINTS blocks");
    }
    validate_mesh(mesh_, path_);
    return std::move(mesh_);
  }

 private:
  [[noreturn]] void fail_here(const std::string& message) const {
    throw Error(path_, "line " + std::to_string(lines_.number()) + ": " + message);
  }

  int64_t integer(std::string_view token, const char* what) const {
    if (token.size() > 1 && token[0] == '+' && token[1] != '-') token.remove_prefix(1);
    int64_t value = 0;
    const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
    if (ec != std::errc() || end != token.data() + token.size()) {
      fail_here(std::string("expected an integer for ") + what + ", found '" + std::string(token) + "'");
    }
    return value;
  }

  double number(std::string_view token) const {
    if (token.size() > 1 && token[0] == '+' && token[1] != '-') token.remove_prefix(1);
    double value = 0;
    const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
    // Out-of-range values come back as errors from from_chars; they are corrupt either way.
    if (ec != std::errc() || end != token.data() + token.size()) {
      fail_here("expected a coordinate, found '" + std::string(token) + "'");
    }
    return value;
  }

  // The count after a POINTS or POLYGONS keyword.
  size_t count(const char* keyword) const {
    if (tokens_.size() < 2) fail_here(std::string(keyword) + " without a count");
    const int64_t n = integer(tokens_[1], "the count");
    if (n < 0) fail_here(std::string(keyword) + " has a negative count " + std::to_string(n));
    return static_cast<size_t>(n);
  }

  // Reads the next record line of a block, failing if the file ends first. No memory is sized
  // from the declared count, so an absurd count just runs into the end of the file.
  void next_record(const char* keyword, size_t declared, size_t k) {
    if (!lines_.next(tokens_)) {
      fail_here(std::string("truncated: the ") + keyword + " block declares " + std::to_string(declared) +
                " entries but the file ends after " + std::to_string(k));
    }
  }

  void read_points(size_t n) {
    for (size_t k = 0; k < n; ++k) {
      next_record("POINTS", n, k);
      if (tokens_.size() < 3) fail_here("a point needs 3 coordinates, found " + std::to_string(tokens_.size()));
      mesh_.vertices.push_back({number(tokens_[0]), number(tokens_[1]), number(tokens_[2])});
      detail::check_vertex_total(mesh_.vertices.size(), path_);
    }
  }

  void read_polygons(size_t n, size_t base, size_t block_size) {
    for (size_t k = 0; k < n; ++k) {
      next_record("POLYGONS", n, k);
      if (tokens_.size() < 2) fail_here("a polygon needs flags and a corner count");
      const int64_t corners = integer(tokens_[1], "the corner count");
      // Checked against the tokens present, so a huge count cannot size anything.
      if (corners < 0 || uint64_t(corners) > tokens_.size() - 2) {
        fail_here("polygon declares " + std::to_string(corners) + " corners but the line has " +
                  std::to_string(tokens_.size() - 2) + " values after the count");
      }
      corners_.clear();
      for (int64_t c = 0; c < corners; ++c) {
        const int64_t index = integer(tokens_[2 + static_cast<size_t>(c)], "a polygon corner");
        if (index < 0 || uint64_t(index) >= block_size) {
          fail_here("polygon corner " + std::to_string(index) + " is outside its POINTS block of " +
                    std::to_string(block_size) + " points");
        }
        corners_.push_back(static_cast<int32_t>(base + uint64_t(index)));
      }
      append_fan(corners_.data(), corners_.size(), mesh_.faces);
    }
  }

  Lines lines_;
  const std::string& path_;
  std::vector<std::string_view> tokens_;
  std::vector<int32_t> corners_;
  Mesh mesh_;
};

}  // namespace

Mesh read_pie(const std::vector<uint8_t>& bytes, const std::string& path) { return PieReader(bytes, path).read(); }

}  // namespace iflame::readers
