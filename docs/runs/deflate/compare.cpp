// Side by side: our own zlib_compress (render/deflate.cpp before commit "PNG through zlib") vs
// zlib's compress2, on the decoded pixels of real PNGs, best of 5 each. Build it in a tree at
// commit 4622448 (the last with our own DEFLATE):
//   g++ -O2 -std=c++17 -Isrc docs/runs/deflate/compare.cpp build/src/libiflame_core.a -lz -lpthread -o compare
//   ./compare IMAGE.png...
#include <zlib.h>
#include <chrono>
#include <cstdio>
#include <vector>
#include "render/deflate.h"
#include "render/png.h"
#include "util/fs.h"
using namespace iflame;
int main(int argc, char** argv) {
  for (int a = 1; a < argc; ++a) {
    auto png = read_file_bytes(argv[a]);
    // Decode to raw pixels through our decoder, then re-filter as the encoder would: use the raw RGB bytes.
    render::Image img = render::decode_png(png, argv[a]);
    const std::vector<uint8_t>& raw = img.pixels;
    for (int level : {1, 6}) {
      double best_ours = 1e9, best_z = 1e9; size_t ours_size = 0, z_size = 0;
      for (int rep = 0; rep < 5; ++rep) {
        auto t0 = std::chrono::steady_clock::now();
        auto o = render::zlib_compress(raw.data(), raw.size(), level);
        auto t1 = std::chrono::steady_clock::now();
        uLongf n = compressBound(raw.size()); std::vector<uint8_t> z(n);
        compress2(z.data(), &n, raw.data(), raw.size(), level);
        auto t2 = std::chrono::steady_clock::now();
        best_ours = std::min(best_ours, std::chrono::duration<double, std::milli>(t1 - t0).count());
        best_z = std::min(best_z, std::chrono::duration<double, std::milli>(t2 - t1).count());
        ours_size = o.size(); z_size = n;
      }
      std::printf("%s %dx%d level %d: ours %.1f ms %zu B | zlib %.1f ms %zu B\n", argv[a], img.width, img.height, level, best_ours, ours_size, best_z, z_size);
    }
  }
}
