// Side by side: our PNG encoder (render/png.cpp: per-row adaptive filters over zlib level 6) vs
// libpng's simplified writer (png_image_write_to_memory) with its defaults and with
// PNG_IMAGE_FLAG_FAST, on the pixels of real PNGs, best of 5 each. In this tree, after building:
//   g++ -O2 -std=c++17 -Isrc docs/runs/png/compare.cpp build/src/libiflame_core.a -lpng -lz -lpthread -o compare
//   ./compare IMAGE.png...
#include <png.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

#include "render/png.h"
#include "util/fs.h"

using namespace iflame;
using Clock = std::chrono::steady_clock;

// Best time of 5 (ms) and the size of what `encode` made.
static std::pair<double, size_t> best_of_5(const std::function<size_t()>& encode) {
  double best = 1e9;
  size_t bytes = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = Clock::now();
    bytes = encode();
    best = std::min(best, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  return {best, bytes};
}

static size_t libpng_bytes(const render::Image& img, png_uint_32 flags) {
  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  png.width = png_uint_32(img.width);
  png.height = png_uint_32(img.height);
  png.format = img.channels == 4 ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
  png.flags = flags;
  png_alloc_size_t size = 0;
  png_image_write_to_memory(&png, nullptr, &size, 0, img.pixels.data(), 0, nullptr);
  std::vector<uint8_t> out(size);
  if (!png_image_write_to_memory(&png, out.data(), &size, 0, img.pixels.data(), 0, nullptr)) return 0;
  return size;
}

int main(int argc, char** argv) {
  std::printf("| image | ours: ms | ours: bytes | libpng: ms | libpng: bytes | libpng FAST: ms | libpng FAST: bytes |\n"
              "|---|---:|---:|---:|---:|---:|---:|\n");
  for (int a = 1; a < argc; ++a) {
    const render::Image img = render::decode_png(read_file_bytes(argv[a]), argv[a]);
    const auto ours = best_of_5([&] { return render::encode_png(img).size(); });
    const auto lib = best_of_5([&] { return libpng_bytes(img, 0); });
    const auto fast = best_of_5([&] { return libpng_bytes(img, PNG_IMAGE_FLAG_FAST); });
    std::printf("| %dx%d | %.1f | %zu | %.1f | %zu | %.1f | %zu |\n", img.width, img.height, ours.first, ours.second,
                lib.first, lib.second, fast.first, fast.second);
  }
  return 0;
}
