// DEFLATE/zlib (through zlib) and our PNG writer: known checksums, round trips, a reference
// stream made by zlib, chunk CRCs, and corrupt-input handling (errors, capped output).
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>

#include "render/deflate.h"
#include "render/png.h"
#include "test_paths.h"
#include "util/error.h"
#include "util/fs.h"

namespace iflame::render {
namespace {

std::vector<uint8_t> bytes_of(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

// The text compressed by Python's zlib.compress(data, 9) below (one dynamic-Huffman block).
std::vector<uint8_t> zlib_reference_text() {
  std::string s;
  char buf[80];
  for (int i = 0; i < 60; ++i) {
    std::snprintf(buf, sizeof buf, "the quick brown fox %d jumps over the lazy dog; ", i * i % 97);
    s += buf;
  }
  return bytes_of(s);
}

const std::vector<uint8_t> kZlibReference = {
    0x78, 0xda, 0xb5, 0x94, 0x49, 0x0e, 0x02, 0x31, 0x0c, 0x04, 0xbf, 0xe2, 0x27, 0x90, 0xd5, 0x8e, 0x78, 0x0d, 0xcb, 0xb0, 0x43,
    0x60, 0x98, 0x61, 0x7b, 0x3d, 0x88, 0x23, 0x07, 0xa4, 0x3a, 0xe4, 0x18, 0xa9, 0x65, 0x75, 0xca, 0xdd, 0x1e, 0x36, 0x9d, 0x5c,
    0xc6, 0xed, 0x62, 0x2f, 0xf3, 0xbe, 0xde, 0x4f, 0xb2, 0xaa, 0x0f, 0x99, 0xc8, 0x6e, 0x3c, 0x9e, 0xaf, 0x52, 0x6f, 0x5d, 0x2f,
    0xc3, 0x47, 0x70, 0x98, 0xbd, 0x9e, 0xb2, 0xac, 0xeb, 0xe9, 0xf7, 0xf5, 0x2b, 0x77, 0x4c, 0x1e, 0x99, 0xbc, 0x40, 0x33, 0x99,
    0xe9, 0x7d, 0x62, 0xfa, 0x00, 0xe7, 0x47, 0xe8, 0x3f, 0x43, 0x3c, 0x06, 0xe9, 0x07, 0x88, 0x07, 0xda, 0x89, 0xca, 0xf4, 0xea,
    0xa1, 0x1f, 0xf8, 0x5b, 0x48, 0x27, 0xc3, 0xf9, 0x85, 0xa6, 0x07, 0xe2, 0x57, 0x5a, 0x45, 0xe8, 0x3f, 0x41, 0x3f, 0x85, 0xa6,
    0x9f, 0x96, 0x9d, 0xde, 0x12, 0xea, 0x1f, 0xfa, 0x49, 0x90, 0xbf, 0xc1, 0xb8, 0xc1, 0xf8, 0x78, 0xd8, 0x2e, 0x83, 0x7e, 0x12,
    0xc4, 0xe3, 0x61, 0xdc, 0x8c, 0x1e, 0x43, 0x7a, 0xdc, 0x20, 0x4f, 0x07, 0xe7, 0x1b, 0x8c, 0x7f, 0xa6, 0x75, 0x81, 0xfb, 0x0a,
    0x90, 0xbf, 0xa3, 0xf9, 0x84, 0xed, 0x82, 0x6d, 0x34, 0xb8, 0x2e, 0x85, 0xf1, 0x51, 0x3a, 0x3f, 0x34, 0xd6, 0x37, 0xfe, 0x2f,
    0xe5, 0x49, 0xf7, 0x95, 0xdb, 0xa6, 0x8d, 0xa6, 0x99, 0xb6, 0x85, 0xb6, 0xf1, 0x5f, 0xdb, 0xdf, 0xa5, 0x3d, 0xf2, 0x4b};

TEST(Checksums, KnownValues) {
  const auto check = bytes_of("123456789");
  EXPECT_EQ(crc32(check.data(), check.size()), 0xCBF43926u);
  EXPECT_EQ(crc32(nullptr, 0), 0u);
  const auto wiki = bytes_of("Wikipedia");
  EXPECT_EQ(adler32(wiki.data(), wiki.size()), 0x11E60398u);
  EXPECT_EQ(adler32(nullptr, 0), 1u);
  // Values Python's zlib gives for the reference text; and running checksums compose.
  const auto text = zlib_reference_text();
  EXPECT_EQ(crc32(text.data(), text.size()), 4262792183u);
  EXPECT_EQ(adler32(text.data(), text.size()), 2772300363u);
  EXPECT_EQ(crc32(text.data() + 100, text.size() - 100, crc32(text.data(), 100)), 4262792183u);
  EXPECT_EQ(adler32(text.data() + 100, text.size() - 100, adler32(text.data(), 100)), 2772300363u);
}

TEST(Deflate, InflatesRealZlibOutput) {
  const auto text = zlib_reference_text();
  EXPECT_EQ(zlib_decompress(kZlibReference.data(), kZlibReference.size()), text);
}

TEST(Deflate, RoundTripsAtEveryEffort) {
  std::mt19937 rng(7);
  std::vector<std::vector<uint8_t>> inputs = {{}, {42}, bytes_of("abcabcabcabcabcabc"), zlib_reference_text()};
  std::vector<uint8_t> random(70000), runs, mixed;
  for (auto& b : random) b = uint8_t(rng());
  inputs.push_back(random);  // incompressible: stored blocks, more than one
  runs.assign(100000, 'x');  // long runs: maximal matches
  inputs.push_back(runs);
  for (int i = 0; i < 120000; ++i) mixed.push_back(uint8_t(i % 251 < 200 ? (i / 7) % 13 : rng() % 4));  // far matches
  mixed.insert(mixed.end(), random.begin(), random.begin() + 40000);
  mixed.insert(mixed.end(), random.begin(), random.begin() + 40000);  // a repeat 40000 back: out of the window
  inputs.push_back(mixed);
  for (const auto& in : inputs) {
    for (int effort : {0, 1, 6, 9}) {
      const auto z = zlib_compress(in.data(), in.size(), effort);
      ASSERT_EQ(zlib_decompress(z.data(), z.size()), in) << "size " << in.size() << " effort " << effort;
      const auto raw = deflate(in.data(), in.size(), effort);
      ASSERT_EQ(inflate(raw.data(), raw.size()), in);
    }
  }
  // Compressible input does compress; incompressible input costs only the stored-block framing.
  EXPECT_LT(zlib_compress(runs.data(), runs.size()).size(), 1000u);
  EXPECT_LT(zlib_compress(mixed.data(), mixed.size()).size(), mixed.size() * 3 / 4);
  // (zlib stores at most 16 KiB per block, 5 bytes of framing each, plus 6 of header/trailer.)
  EXPECT_LE(zlib_compress(random.data(), random.size()).size(), random.size() + 6 + 5 * (random.size() / 16384 + 1));
}

TEST(Deflate, CorruptStreamsThrow) {
  const auto text = zlib_reference_text();
  auto z = zlib_compress(text.data(), text.size());
  EXPECT_THROW(zlib_decompress(z.data(), z.size() - 3), Error);  // truncated trailer
  EXPECT_THROW(zlib_decompress(z.data(), 10), Error);            // truncated data
  auto bad_header = z;
  bad_header[1] ^= 1;
  EXPECT_THROW(zlib_decompress(bad_header.data(), bad_header.size()), Error);
  auto bad_sum = z;
  bad_sum.back() ^= 1;
  EXPECT_THROW(zlib_decompress(bad_sum.data(), bad_sum.size()), Error);
  EXPECT_THROW(zlib_decompress(z.data(), z.size(), 100), Error);  // over the output limit
  // Random garbage after a valid header: errors, never a crash or a hang.
  std::mt19937 rng(3);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<uint8_t> junk = {0x78, 0x9C};
    for (int i = 0; i < 64; ++i) junk.push_back(uint8_t(rng()));
    try {
      zlib_decompress(junk.data(), junk.size(), 1 << 20);
    } catch (const Error&) {
    }
  }
}

Image test_image(int w, int h, int channels) {
  Image img(w, h, channels);
  std::mt19937 rng(11);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = img.at(x, y);
      p[0] = uint8_t(x * 255 / std::max(1, w - 1));  // gradients (the filters' strength)
      p[1] = uint8_t(y * 255 / std::max(1, h - 1));
      p[2] = x > w / 2 ? uint8_t(rng()) : 90;  // and noise
      if (channels == 4) p[3] = uint8_t((x + y) % 256);
    }
  }
  return img;
}

TEST(Png, RoundTripAndChunkCrcs) {
  for (int channels : {3, 4}) {
    for (auto [w, h] : {std::pair{1, 1}, std::pair{7, 3}, std::pair{300, 200}}) {
      const Image img = test_image(w, h, channels);
      const std::vector<uint8_t> png = encode_png(img);
      // Signature, then chunks whose CRCs we check here independently of the decoder.
      ASSERT_GT(png.size(), 8u);
      EXPECT_EQ(png[0], 0x89);
      EXPECT_EQ(std::string(png.begin() + 1, png.begin() + 4), "PNG");
      std::vector<std::string> types;
      for (size_t pos = 8; pos < png.size();) {
        ASSERT_LE(pos + 12, png.size());
        const uint32_t len = be32(&png[pos]);
        ASSERT_LE(pos + 12 + len, png.size());
        types.emplace_back(png.begin() + long(pos) + 4, png.begin() + long(pos) + 8);
        EXPECT_EQ(crc32(&png[pos + 4], len + 4), be32(&png[pos + 8 + len])) << types.back();
        if (types.back() == "IHDR") {
          EXPECT_EQ(be32(&png[pos + 8]), uint32_t(w));
          EXPECT_EQ(be32(&png[pos + 12]), uint32_t(h));
          EXPECT_EQ(png[pos + 16], 8);                           // bit depth
          EXPECT_EQ(png[pos + 17], channels == 4 ? 6 : 2);       // color type
        }
        pos += 12 + len;
      }
      ASSERT_GE(types.size(), 3u);
      EXPECT_EQ(types.front(), "IHDR");
      EXPECT_EQ(types.back(), "IEND");
      const Image back = decode_png(png);
      EXPECT_EQ(back.width, w);
      EXPECT_EQ(back.height, h);
      EXPECT_EQ(back.channels, channels);
      EXPECT_EQ(back.pixels, img.pixels) << w << "x" << h << "x" << channels;
      EXPECT_EQ(decode_png(encode_png(img, 0)).pixels, img.pixels);  // stored blocks
    }
  }
}

TEST(Png, SmoothImagesCompressWell) {
  Image img(512, 512, 3, kWhite);
  img.fill_rect(100, 100, 300, 200, {150, 178, 222});
  const auto png = encode_png(img);
  EXPECT_LT(png.size(), 8000u) << "512x512 flat image";
  EXPECT_EQ(decode_png(png).pixels, img.pixels);
}

TEST(Png, DecoderRejectsCorruption) {
  const auto png = encode_png(test_image(20, 10, 3));
  auto bad_crc = png;
  bad_crc[8 + 8 + 3] ^= 0x40;  // a byte of the IHDR data
  EXPECT_THROW(decode_png(bad_crc, "x.png"), Error);
  try {
    decode_png(bad_crc, "x.png");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("x.png"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("CRC"), std::string::npos);
  }
  EXPECT_THROW(decode_png(std::vector<uint8_t>(png.begin(), png.begin() + long(png.size()) / 2)), Error);
  EXPECT_THROW(decode_png(bytes_of("GIF89a not a png")), Error);
  EXPECT_THROW(encode_png(Image()), Error);
}

TEST(Png, WritesAtomically) {
  const std::string path = test::temp_dir() + "/img.png";
  const Image img = test_image(33, 17, 3);
  write_png(path, img);
  EXPECT_EQ(decode_png(read_file_bytes(path)).pixels, img.pixels);
  EXPECT_THROW(write_png(test::temp_dir() + "/no/such/dir/img.png", img), Error);
}

TEST(Image, DrawingIsClipped) {
  Image img(10, 10, 3, kBlack);
  img.fill_rect(-5, -5, 8, 8, kWhite);  // partly outside
  EXPECT_EQ(img.get(0, 0), kWhite);
  EXPECT_EQ(img.get(2, 2), kWhite);
  EXPECT_EQ(img.get(3, 3), kBlack);
  img.set(-1, 4, kWhite);
  img.set(10, 4, kWhite);
  img.blend(5, 5, kWhite, 0.5);
  EXPECT_EQ(img.get(5, 5), (Rgb{128, 128, 128}));
  Image small(4, 4, 3, {1, 2, 3});
  img.blit(small, 8, 8);  // clipped to 2x2
  EXPECT_EQ(img.get(9, 9), (Rgb{1, 2, 3}));
  EXPECT_EQ(img.get(7, 7), kBlack);
}

}  // namespace
}  // namespace iflame::render
