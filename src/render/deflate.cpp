// DEFLATE and zlib streams through zlib itself. We once had our own (a fixed-Huffman LZ77 and an
// inflater, 440 lines); side by side on a rendered 800x678 image zlib was as fast or faster and
// 10-13% smaller at levels 1 and 6 (docs/benchmarks.md), so the library does the work and this
// file only adapts its interface and bounds the output of inflating.
#include "render/deflate.h"

#include <zlib.h>

#include <climits>
#include <string>

#include "util/error.h"

namespace iflame::render {

namespace {

// zlib's counters are 32-bit: feed and drain in chunks below that.
constexpr size_t kChunk = size_t(1) << 30;

int level_of(int effort) { return effort < 0 ? 0 : effort > 9 ? 9 : effort; }

// window_bits: -15 raw DEFLATE, 15 a zlib stream.
std::vector<uint8_t> compress(const uint8_t* data, size_t size, int effort, int window_bits) {
  z_stream z{};
  if (deflateInit2(&z, level_of(effort), Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw Error("zlib: cannot start a deflate stream");
  }
  std::vector<uint8_t> out(deflateBound(&z, uLong(std::min(size, kChunk))) + (size / kChunk + 1) * 64 + size);
  z.next_out = out.data();
  z.avail_out = uInt(std::min(out.size(), size_t(UINT_MAX)));
  size_t fed = 0;
  int rc = Z_OK;
  do {
    const size_t n = std::min(size - fed, kChunk);
    z.next_in = const_cast<Bytef*>(data + fed);
    z.avail_in = uInt(n);
    fed += n;
    rc = deflate(&z, fed == size ? Z_FINISH : Z_NO_FLUSH);
  } while (rc == Z_OK && fed < size);
  while (rc == Z_OK) rc = deflate(&z, Z_FINISH);
  const size_t written = size_t(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) throw Error("zlib: deflate failed (" + std::to_string(rc) + ")");
  out.resize(written);
  return out;
}

std::vector<uint8_t> decompress(const uint8_t* data, size_t size, size_t max_output, int window_bits, const char* what) {
  z_stream z{};
  if (inflateInit2(&z, window_bits) != Z_OK) throw Error(std::string(what) + ": cannot start an inflate stream");
  std::vector<uint8_t> out;
  uint8_t buffer[1 << 16];
  size_t fed = 0;
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (z.avail_in == 0 && fed < size) {
      const size_t n = std::min(size - fed, kChunk);
      z.next_in = const_cast<Bytef*>(data + fed);
      z.avail_in = uInt(n);
      fed += n;
    }
    z.next_out = buffer;
    z.avail_out = sizeof buffer;
    rc = inflate(&z, Z_NO_FLUSH);
    const size_t got = sizeof buffer - z.avail_out;
    if (out.size() + got > max_output) {
      inflateEnd(&z);
      throw Error(std::string(what) + ": the data inflates to more than " + std::to_string(max_output) + " bytes");
    }
    out.insert(out.end(), buffer, buffer + got);
    if (rc == Z_BUF_ERROR && z.avail_in == 0 && fed == size) rc = Z_DATA_ERROR;  // input ended early
    if (rc != Z_OK && rc != Z_STREAM_END) {
      const std::string why = rc == Z_DATA_ERROR && z.msg ? z.msg : "truncated or corrupt stream";
      inflateEnd(&z);
      throw Error(std::string(what) + ": " + why);
    }
  }
  inflateEnd(&z);
  return out;
}

}  // namespace

uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc) {
  uLong c = crc;
  for (size_t done = 0; done < size; done += kChunk) c = ::crc32(c, data + done, uInt(std::min(size - done, kChunk)));
  return uint32_t(c);
}

uint32_t adler32(const uint8_t* data, size_t size, uint32_t adler) {
  uLong a = adler;
  for (size_t done = 0; done < size; done += kChunk) a = ::adler32(a, data + done, uInt(std::min(size - done, kChunk)));
  return uint32_t(a);
}

std::vector<uint8_t> deflate(const uint8_t* data, size_t size, int effort) { return compress(data, size, effort, -15); }

std::vector<uint8_t> zlib_compress(const uint8_t* data, size_t size, int effort) {
  return compress(data, size, effort, 15);
}

std::vector<uint8_t> inflate(const uint8_t* data, size_t size, size_t max_output) {
  return decompress(data, size, max_output, -15, "DEFLATE");
}

std::vector<uint8_t> zlib_decompress(const uint8_t* data, size_t size, size_t max_output) {
  return decompress(data, size, max_output, 15, "zlib");
}

}  // namespace iflame::render
