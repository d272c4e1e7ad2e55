// 8-bit RGB/RGBA images, our PNG encoder (per-row adaptive filtering over zlib; render/png.cpp
// says why not libpng), and a decoder for the non-interlaced 8-bit RGB/RGBA/grey PNGs that such
// encoders write (the tests read our files back with it; not a general PNG reader).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace iflame::render {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb& o) const { return r == o.r && g == o.g && b == o.b; }
  bool operator!=(const Rgb& o) const { return !(*this == o); }
};

inline constexpr Rgb kWhite{255, 255, 255};
inline constexpr Rgb kBlack{0, 0, 0};

// Row-major pixels, `channels` bytes each (3 = RGB, 4 = RGBA with straight alpha).
struct Image {
  int width = 0, height = 0, channels = 3;
  std::vector<uint8_t> pixels;

  Image() = default;
  Image(int w, int h, int channels = 3, Rgb fill = kWhite);

  bool empty() const { return width <= 0 || height <= 0; }
  bool contains(int x, int y) const { return x >= 0 && y >= 0 && x < width && y < height; }
  uint8_t* at(int x, int y) { return pixels.data() + (size_t(y) * size_t(width) + size_t(x)) * size_t(channels); }
  const uint8_t* at(int x, int y) const { return pixels.data() + (size_t(y) * size_t(width) + size_t(x)) * size_t(channels); }
  Rgb get(int x, int y) const {
    const uint8_t* p = at(x, y);
    return {p[0], p[1], p[2]};
  }
  // Out-of-range writes are ignored, so drawing code may run off the edges. An RGBA pixel
  // becomes opaque.
  void set(int x, int y, Rgb c);
  // Mixes `c` over the pixel with coverage `alpha` in [0, 1].
  void blend(int x, int y, Rgb c, double alpha);
  void fill_rect(int x, int y, int w, int h, Rgb c);
  // Copies `src` (same channel count or RGB into RGBA) with its top-left corner at (x, y),
  // clipped to this image.
  void blit(const Image& src, int x, int y);
};

// The PNG file bytes for `image` (color type 2 or 6, 8 bits, not interlaced). `effort` as for
// deflate(): 0 stores, 1..9 compress harder.
std::vector<uint8_t> encode_png(const Image& image, int effort = 6);
// encode_png written with write_file_atomic. Throws iflame::Error naming the path when the image
// is empty or the file cannot be written.
void write_png(const std::string& path, const Image& image, int effort = 6);

// Reads back a PNG with bit depth 8, color type 0/2/4/6 and no interlacing (grey is expanded to
// RGB). Checks the signature, every chunk CRC and the zlib checksum; throws iflame::Error naming
// `what` (a path or a label) on anything else or on corruption.
Image decode_png(const std::vector<uint8_t>& bytes, const std::string& what = "PNG");

}  // namespace iflame::render
