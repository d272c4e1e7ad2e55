// DEFLATE (RFC 1951) and zlib (RFC 1950) streams for the PNG writer and its tests, through zlib
// (render/deflate.cpp says why not our own).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace iflame::render {

// CRC-32 (IEEE 802.3, the one PNG and gzip use). Pass the previous value to continue a running
// checksum: crc32(b, nb, crc32(a, na)) == crc32(a ++ b).
uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc = 0);
// Adler-32 (zlib's trailer), continued the same way; the initial value is 1.
uint32_t adler32(const uint8_t* data, size_t size, uint32_t adler = 1);

// Raw DEFLATE stream (no header). `effort` is zlib's level: 0 emits stored blocks only, 1..9
// trade speed for size (default 6).
std::vector<uint8_t> deflate(const uint8_t* data, size_t size, int effort = 6);
// zlib stream: 2-byte header, deflate(), big-endian Adler-32.
std::vector<uint8_t> zlib_compress(const uint8_t* data, size_t size, int effort = 6);

// Inverse of the above, for any conforming stream. Throws iflame::Error on corrupt input
// (bad header, bad Huffman code, distance too far back, checksum mismatch, truncation) and when
// the output would exceed `max_output` bytes.
std::vector<uint8_t> inflate(const uint8_t* data, size_t size, size_t max_output = size_t(1) << 31);
std::vector<uint8_t> zlib_decompress(const uint8_t* data, size_t size, size_t max_output = size_t(1) << 31);

}  // namespace iflame::render
