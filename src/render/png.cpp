// Our PNG writer: the filtering (the five filters per row, the smallest sum of absolute values
// wins) and the chunks here, the compression by zlib (render/deflate.h). libpng would do it in
// fewer lines, but measured side by side on our rendered sheets and plots its simplified writer
// was 1.5-1.7x slower at the same size with its defaults, and 1.3-3.8x larger with
// PNG_IMAGE_FLAG_FAST (docs/benchmarks.md, "PNG writer"), so the ~120 lines stay.
#include "render/png.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "render/deflate.h"
#include "util/error.h"
#include "util/fs.h"

namespace iflame::render {
namespace {

constexpr uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
constexpr size_t kMaxIdat = size_t(1) << 18;  // split image data into 256 KiB chunks

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(uint8_t(v >> s));
}

uint32_t get_u32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

void put_chunk(std::vector<uint8_t>& out, const char type[4], const uint8_t* data, size_t size) {
  put_u32(out, uint32_t(size));
  const size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data, data + size);
  put_u32(out, crc32(out.data() + start, size + 4));
}

int paeth(int a, int b, int c) {
  const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

// The value filter `type` (0..4: none, sub, up, average, Paeth) predicts from the byte to the
// left (a), above (b) and above-left (c).
int predict(int type, int a, int b, int c) {
  switch (type) {
    case 1: return a;
    case 2: return b;
    case 3: return (a + b) / 2;
    case 4: return paeth(a, b, c);
    default: return 0;
  }
}

// Filters one row with filter type `type` (0..4) into out[0..n). `prior` is the unfiltered row
// above (all zero for the first row); `bpp` bytes per pixel.
void filter_row(int type, const uint8_t* row, const uint8_t* prior, size_t n, size_t bpp, uint8_t* out) {
  for (size_t i = 0; i < n; ++i) {
    const int a = i >= bpp ? row[i - bpp] : 0, b = prior[i], c = i >= bpp ? prior[i - bpp] : 0;
    out[i] = uint8_t(row[i] - predict(type, a, b, c));
  }
}

// The inverse, in place: row[i] is already unfiltered when row[i + bpp] needs it.
void unfilter_row(int type, uint8_t* row, const uint8_t* prior, size_t n, size_t bpp) {
  for (size_t i = 0; i < n; ++i) {
    const int a = i >= bpp ? row[i - bpp] : 0, b = prior[i], c = i >= bpp ? prior[i - bpp] : 0;
    row[i] = uint8_t(row[i] + predict(type, a, b, c));
  }
}

}  // namespace

Image::Image(int w, int h, int ch, Rgb fill) : width(std::max(w, 0)), height(std::max(h, 0)), channels(ch == 4 ? 4 : 3) {
  pixels.resize(size_t(width) * size_t(height) * size_t(channels));
  for (size_t i = 0; i < pixels.size(); i += size_t(channels)) {
    pixels[i] = fill.r;
    pixels[i + 1] = fill.g;
    pixels[i + 2] = fill.b;
    if (channels == 4) pixels[i + 3] = 255;
  }
}

void Image::set(int x, int y, Rgb c) {
  if (!contains(x, y)) return;
  uint8_t* p = at(x, y);
  p[0] = c.r;
  p[1] = c.g;
  p[2] = c.b;
  if (channels == 4) p[3] = 255;
}

void Image::blend(int x, int y, Rgb c, double alpha) {
  if (!contains(x, y) || !(alpha > 0)) return;
  if (alpha >= 1) return set(x, y, c);
  uint8_t* p = at(x, y);
  auto mix = [alpha](uint8_t dst, uint8_t src) { return uint8_t(std::lround(dst + (src - dst) * alpha)); };
  p[0] = mix(p[0], c.r);
  p[1] = mix(p[1], c.g);
  p[2] = mix(p[2], c.b);
  if (channels == 4) p[3] = uint8_t(std::lround(p[3] + (255 - p[3]) * alpha));
}

void Image::fill_rect(int x, int y, int w, int h, Rgb c) {
  const int x0 = std::max(x, 0), y0 = std::max(y, 0), x1 = std::min(x + w, width), y1 = std::min(y + h, height);
  for (int yy = y0; yy < y1; ++yy) {
    for (int xx = x0; xx < x1; ++xx) set(xx, yy, c);
  }
}

void Image::blit(const Image& src, int x, int y) {
  const int x0 = std::max(x, 0), y0 = std::max(y, 0);
  const int x1 = std::min(x + src.width, width), y1 = std::min(y + src.height, height);
  for (int yy = y0; yy < y1; ++yy) {
    for (int xx = x0; xx < x1; ++xx) {
      const uint8_t* s = src.at(xx - x, yy - y);
      uint8_t* d = at(xx, yy);
      d[0] = s[0];
      d[1] = s[1];
      d[2] = s[2];
      if (channels == 4) d[3] = src.channels == 4 ? s[3] : 255;
    }
  }
}

std::vector<uint8_t> encode_png(const Image& image, int effort) {
  if (image.empty()) throw Error("cannot write an empty (" + std::to_string(image.width) + "x" + std::to_string(image.height) + ") image as PNG");
  const size_t bpp = size_t(image.channels), stride = size_t(image.width) * bpp;
  if (image.pixels.size() != stride * size_t(image.height)) throw Error("image pixel buffer does not match its size");

  // Per-row adaptive filtering with the usual heuristic: the filter whose output has the
  // smallest sum of absolute values (bytes read as signed).
  std::vector<uint8_t> raw;
  raw.reserve((stride + 1) * size_t(image.height));
  std::vector<uint8_t> zero(stride, 0), candidate(stride), best(stride);
  for (int y = 0; y < image.height; ++y) {
    const uint8_t* row = image.at(0, y);
    const uint8_t* prior = y > 0 ? image.at(0, y - 1) : zero.data();
    uint64_t best_cost = UINT64_MAX;
    int best_type = 0;
    for (int type = 0; type < 5; ++type) {
      filter_row(type, row, prior, stride, bpp, candidate.data());
      uint64_t cost = 0;
      for (uint8_t v : candidate) cost += uint64_t(std::abs(int(int8_t(v))));
      if (cost < best_cost) {
        best_cost = cost;
        best_type = type;
        best.swap(candidate);
      }
    }
    raw.push_back(uint8_t(best_type));
    raw.insert(raw.end(), best.begin(), best.end());
  }
  const std::vector<uint8_t> z = zlib_compress(raw.data(), raw.size(), effort);

  std::vector<uint8_t> out(kSignature, kSignature + 8);
  uint8_t ihdr[13];
  const uint32_t w = uint32_t(image.width), h = uint32_t(image.height);
  for (int i = 0; i < 4; ++i) {
    ihdr[i] = uint8_t(w >> (24 - 8 * i));
    ihdr[4 + i] = uint8_t(h >> (24 - 8 * i));
  }
  ihdr[8] = 8;                               // bit depth
  ihdr[9] = image.channels == 4 ? 6 : 2;     // color type: RGBA or RGB
  ihdr[10] = ihdr[11] = ihdr[12] = 0;        // deflate, adaptive filtering, no interlace
  put_chunk(out, "IHDR", ihdr, sizeof ihdr);
  static const char kSoftware[] = "Software\0iflame";
  put_chunk(out, "tEXt", reinterpret_cast<const uint8_t*>(kSoftware), sizeof kSoftware - 1);
  for (size_t pos = 0; pos < z.size(); pos += kMaxIdat) {
    put_chunk(out, "IDAT", z.data() + pos, std::min(kMaxIdat, z.size() - pos));
  }
  put_chunk(out, "IEND", nullptr, 0);
  return out;
}

void write_png(const std::string& path, const Image& image, int effort) {
  std::vector<uint8_t> bytes;
  try {
    bytes = encode_png(image, effort);
  } catch (const Error& e) {
    throw Error(path, e.what());
  }
  write_file_atomic(path, bytes.data(), bytes.size());
}

Image decode_png(const std::vector<uint8_t>& bytes, const std::string& what) {
  auto fail = [&](const std::string& msg) -> Error { return Error(what, msg); };
  if (bytes.size() < 8 || std::memcmp(bytes.data(), kSignature, 8) != 0) throw fail("not a PNG file (bad signature)");
  size_t pos = 8;
  uint32_t width = 0, height = 0;
  int color_type = -1;
  bool seen_end = false;
  std::vector<uint8_t> idat;
  while (!seen_end) {
    if (pos + 12 > bytes.size()) throw fail("truncated chunk at byte " + std::to_string(pos));
    const uint32_t len = get_u32(&bytes[pos]);
    if (len > bytes.size() - pos - 12) throw fail("chunk at byte " + std::to_string(pos) + " runs past the end of the file");
    const std::string type(reinterpret_cast<const char*>(&bytes[pos + 4]), 4);
    const uint8_t* data = &bytes[pos + 8];
    if (crc32(&bytes[pos + 4], len + 4) != get_u32(data + len)) throw fail("CRC mismatch in " + type + " chunk");
    if (type == "IHDR") {
      if (len != 13) throw fail("IHDR has length " + std::to_string(len));
      width = get_u32(data);
      height = get_u32(data + 4);
      color_type = data[9];
      if (data[8] != 8 || (color_type != 0 && color_type != 2 && color_type != 4 && color_type != 6) || data[10] || data[11] || data[12]) {
        throw fail("only 8-bit grey/RGB/RGBA, non-interlaced PNGs are supported");
      }
      if (width == 0 || height == 0 || width > (1u << 15) || height > (1u << 15)) throw fail("unsupported size");
    } else if (type == "IDAT") {
      idat.insert(idat.end(), data, data + len);
    } else if (type == "IEND") {
      seen_end = true;
    } else if (!(type[0] & 0x20)) {
      throw fail("unknown critical chunk " + type);
    }
    pos += size_t(len) + 12;
  }
  if (color_type < 0) throw fail("no IHDR chunk");
  const size_t in_ch = color_type == 0 ? 1 : color_type == 4 ? 2 : color_type == 2 ? 3 : 4;
  const size_t stride = width * in_ch;
  std::vector<uint8_t> raw;
  try {
    raw = zlib_decompress(idat.data(), idat.size(), (stride + 1) * height);
  } catch (const Error& e) {
    throw fail(e.what());
  }
  if (raw.size() != (stride + 1) * height) throw fail("image data has the wrong size");
  const bool alpha = color_type == 4 || color_type == 6;
  Image img(int(width), int(height), alpha ? 4 : 3);
  std::vector<uint8_t> prior(stride, 0);
  for (uint32_t y = 0; y < height; ++y) {
    uint8_t* row = &raw[y * (stride + 1)];
    if (row[0] > 4) throw fail("bad filter type " + std::to_string(row[0]) + " on row " + std::to_string(y));
    unfilter_row(row[0], row + 1, prior.data(), stride, in_ch);
    for (uint32_t x = 0; x < width; ++x) {
      const uint8_t* s = row + 1 + x * in_ch;
      uint8_t* d = img.at(int(x), int(y));
      if (in_ch <= 2) {
        d[0] = d[1] = d[2] = s[0];
        if (alpha) d[3] = s[1];
      } else {
        std::memcpy(d, s, in_ch);
      }
    }
    std::memcpy(prior.data(), row + 1, stride);
  }
  return img;
}

}  // namespace iflame::render
