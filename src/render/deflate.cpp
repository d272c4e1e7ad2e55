#include "render/deflate.h"

#include <algorithm>
#include <array>
#include <string>

#include "util/error.h"

namespace iflame::render {
namespace {

// ---- checksums ------------------------------------------------------------------------------

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t n = 0; n < 256; ++n) {
    uint32_t c = n;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[n] = c;
  }
  return t;
}

// ---- the fixed tables of RFC 1951 section 3.2.5 ---------------------------------------------

constexpr uint16_t kLengthBase[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                      31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
constexpr uint8_t kLengthExtra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
constexpr uint16_t kDistBase[30] = {1,   2,   3,   4,   5,   7,    9,    13,   17,   25,   33,   49,   65,    97,    129,
                                    193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
constexpr uint8_t kDistExtra[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
// Order in which a dynamic block sends the code lengths of the code-length alphabet.
constexpr uint8_t kCodeLengthOrder[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};

constexpr size_t kWindow = 32768;
constexpr int kMinMatch = 3, kMaxMatch = 258;

uint32_t reverse_bits(uint32_t code, int len) {
  uint32_t r = 0;
  for (int i = 0; i < len; ++i) r |= ((code >> i) & 1u) << (len - 1 - i);
  return r;
}

// Everything the encoder looks up per symbol, with Huffman codes already bit-reversed (DEFLATE
// sends Huffman codes most-significant bit first inside an LSB-first bit stream).
struct EncoderTables {
  uint16_t lit_code[288];
  uint8_t lit_len[288];
  uint8_t length_symbol[kMaxMatch + 1];  // match length -> index into kLengthBase
  uint8_t dist_symbol[512];             // see dist_index()

  EncoderTables() {
    for (int s = 0; s < 288; ++s) {
      uint32_t code;
      int len;
      if (s < 144) code = 0x30 + s, len = 8;
      else if (s < 256) code = 0x190 + (s - 144), len = 9;
      else if (s < 280) code = s - 256, len = 7;
      else code = 0xC0 + (s - 280), len = 8;
      lit_code[s] = uint16_t(reverse_bits(code, len));
      lit_len[s] = uint8_t(len);
    }
    for (int i = 0; i < 29; ++i) {
      const int hi = i + 1 < 29 ? kLengthBase[i + 1] : kMaxMatch + 1;
      for (int l = kLengthBase[i]; l < hi && l <= kMaxMatch; ++l) length_symbol[l] = uint8_t(i);
    }
    length_symbol[kMaxMatch] = 28;  // 258 has its own code (285), not 284 + 31
    for (int i = 0; i < 30; ++i) {
      const int hi = i + 1 < 30 ? kDistBase[i + 1] : int(kWindow) + 1;
      for (int d = kDistBase[i]; d < hi; ++d) dist_symbol[dist_index(d)] = uint8_t(i);
    }
  }
  // Distances 1..256 index directly; larger ones by (d-1)/128 (every code above 256 spans a
  // multiple of 128 values, so this is exact).
  static size_t dist_index(int d) { return d <= 256 ? size_t(d - 1) : size_t(256 + ((d - 1) >> 7)); }
};

const EncoderTables& encoder_tables() {
  static const EncoderTables t;
  return t;
}

class BitWriter {
 public:
  explicit BitWriter(std::vector<uint8_t>& out) : out_(out) {}
  void put(uint32_t bits, int n) {
    acc_ |= uint64_t(bits) << nbits_;
    nbits_ += n;
    while (nbits_ >= 8) {
      out_.push_back(uint8_t(acc_));
      acc_ >>= 8;
      nbits_ -= 8;
    }
  }
  void align() {
    if (nbits_ > 0) out_.push_back(uint8_t(acc_));
    acc_ = 0;
    nbits_ = 0;
  }

 private:
  std::vector<uint8_t>& out_;
  uint64_t acc_ = 0;
  int nbits_ = 0;
};

void write_stored(const uint8_t* data, size_t size, std::vector<uint8_t>& out) {
  size_t pos = 0;
  do {
    const size_t n = std::min<size_t>(size - pos, 65535);
    const bool last = pos + n == size;
    out.push_back(last ? 1 : 0);  // BFINAL, BTYPE=00, then pad to the byte boundary
    out.push_back(uint8_t(n));
    out.push_back(uint8_t(n >> 8));
    out.push_back(uint8_t(~n));
    out.push_back(uint8_t(~n >> 8));
    out.insert(out.end(), data + pos, data + pos + n);
    pos += n;
  } while (pos < size);
}

// One fixed-Huffman block holding the whole input, LZ77-compressed with hash chains.
void write_fixed(const uint8_t* data, size_t n, int effort, std::vector<uint8_t>& out) {
  static constexpr int kChain[10] = {0, 4, 8, 16, 32, 48, 96, 256, 1024, 4096};
  const int max_chain = kChain[std::clamp(effort, 1, 9)];
  const int nice = effort <= 3 ? 32 : effort <= 6 ? 128 : kMaxMatch;
  const EncoderTables& t = encoder_tables();
  BitWriter bw(out);
  bw.put(1, 1);  // BFINAL
  bw.put(1, 2);  // BTYPE = 01, fixed Huffman

  constexpr int kHashBits = 15;
  std::vector<int32_t> head(size_t(1) << kHashBits, -1), prev(kWindow, -1);
  auto hash = [&](size_t i) {
    const uint32_t v = uint32_t(data[i]) | uint32_t(data[i + 1]) << 8 | uint32_t(data[i + 2]) << 16;
    return (v * 2654435761u) >> (32 - kHashBits);
  };
  size_t inserted = 0;  // positions below this are in the hash chains
  auto insert_until = [&](size_t end) {
    for (; inserted < end && inserted + kMinMatch <= n; ++inserted) {
      const uint32_t h = hash(inserted);
      prev[inserted & (kWindow - 1)] = head[h];
      head[h] = int32_t(inserted);
    }
    inserted = std::max(inserted, end);
  };
  auto find = [&](size_t i, int& best_dist) {
    if (i + kMinMatch > n) return 0;
    const int max_len = int(std::min<size_t>(kMaxMatch, n - i));
    int best = kMinMatch - 1, chain = max_chain;
    int32_t cand = head[hash(i)];
    const uint8_t* b = data + i;
    while (cand >= 0 && i - size_t(cand) <= kWindow && chain-- > 0) {
      const uint8_t* a = data + cand;
      if (a[best] == b[best] && a[0] == b[0] && a[1] == b[1]) {
        int len = 2;
        while (len < max_len && a[len] == b[len]) ++len;
        if (len > best) {
          best = len;
          best_dist = int(i - size_t(cand));
          if (len >= nice || len >= max_len) break;
        }
      }
      const int32_t next = prev[size_t(cand) & (kWindow - 1)];
      if (next >= cand) break;  // the slot was reused by a newer position: end of this chain
      cand = next;
    }
    return best >= kMinMatch ? best : 0;
  };
  auto literal = [&](uint8_t c) { bw.put(t.lit_code[c], t.lit_len[c]); };

  size_t i = 0;
  while (i < n) {
    insert_until(i);
    int dist = 0;
    int len = find(i, dist);
    if (len == 0) {
      literal(data[i++]);
      continue;
    }
    // Lazy matching: while the match starting one byte later is longer, emit a literal instead.
    while (len < nice && i + 1 < n) {
      insert_until(i + 1);
      int dist2 = 0;
      const int len2 = find(i + 1, dist2);
      if (len2 <= len) break;
      literal(data[i++]);
      len = len2;
      dist = dist2;
    }
    const int ls = t.length_symbol[len];
    bw.put(t.lit_code[257 + ls], t.lit_len[257 + ls]);
    if (kLengthExtra[ls]) bw.put(uint32_t(len - kLengthBase[ls]), kLengthExtra[ls]);
    const int ds = t.dist_symbol[EncoderTables::dist_index(dist)];
    bw.put(reverse_bits(uint32_t(ds), 5), 5);
    if (kDistExtra[ds]) bw.put(uint32_t(dist - kDistBase[ds]), kDistExtra[ds]);
    i += size_t(len);
  }
  bw.put(t.lit_code[256], t.lit_len[256]);  // end of block
  bw.align();
}

// ---- inflate (after Mark Adler's puff.c: canonical codes decoded one bit at a time) ---------

struct Huffman {
  uint16_t count[16] = {};  // number of codes of each length
  std::vector<uint16_t> symbol;
};

// Builds the decoding table from code lengths. Returns false for an over-subscribed set;
// incomplete sets are allowed (a lone distance code is legal) and fail only when decoded.
bool build_huffman(Huffman& h, const uint8_t* lengths, int n) {
  std::fill(std::begin(h.count), std::end(h.count), 0);
  for (int s = 0; s < n; ++s) h.count[lengths[s]]++;
  if (h.count[0] == n) {
    h.symbol.clear();
    return true;
  }
  int left = 1;
  for (int len = 1; len < 16; ++len) {
    left <<= 1;
    left -= h.count[len];
    if (left < 0) return false;
  }
  uint16_t offs[16] = {};
  for (int len = 1; len < 15; ++len) offs[len + 1] = uint16_t(offs[len] + h.count[len]);
  h.symbol.assign(size_t(n), 0);
  for (int s = 0; s < n; ++s) {
    if (lengths[s]) h.symbol[offs[lengths[s]]++] = uint16_t(s);
  }
  return true;
}

class Inflater {
 public:
  Inflater(const uint8_t* data, size_t size, size_t max_output) : data_(data), size_(size), max_(max_output) {}

  std::vector<uint8_t> run() {
    bool last = false;
    while (!last) {
      last = bits(1);
      switch (bits(2)) {
        case 0: stored(); break;
        case 1: fixed(); break;
        case 2: dynamic(); break;
        default: fail("invalid block type 3");
      }
    }
    return std::move(out_);
  }
  // Bytes consumed so far (whole bytes; the partial last byte counts).
  size_t consumed() const { return pos_; }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw Error("deflate stream: " + what); }

  uint32_t bits(int need) {
    while (bitcnt_ < need) {
      if (pos_ >= size_) fail("truncated");
      bitbuf_ |= uint32_t(data_[pos_++]) << bitcnt_;
      bitcnt_ += 8;
    }
    const uint32_t v = bitbuf_ & ((1u << need) - 1);
    bitbuf_ >>= need;
    bitcnt_ -= need;
    return v;
  }

  int decode(const Huffman& h) {
    int code = 0, first = 0, index = 0;
    for (int len = 1; len < 16; ++len) {
      code |= int(bits(1));
      const int count = h.count[len];
      if (code - count < first) return h.symbol[size_t(index + (code - first))];
      index += count;
      first += count;
      first <<= 1;
      code <<= 1;
    }
    fail("invalid Huffman code");
  }

  void emit(uint8_t c) {
    if (out_.size() >= max_) fail("output larger than " + std::to_string(max_) + " bytes");
    out_.push_back(c);
  }

  void stored() {
    bitbuf_ = 0;  // drop the rest of the current byte
    bitcnt_ = 0;
    if (pos_ + 4 > size_) fail("truncated stored block header");
    const unsigned len = data_[pos_] | unsigned(data_[pos_ + 1]) << 8;
    const unsigned nlen = data_[pos_ + 2] | unsigned(data_[pos_ + 3]) << 8;
    pos_ += 4;
    if (len != (~nlen & 0xFFFFu)) fail("stored block length check failed");
    if (pos_ + len > size_) fail("truncated stored block");
    if (out_.size() + len > max_) fail("output larger than " + std::to_string(max_) + " bytes");
    out_.insert(out_.end(), data_ + pos_, data_ + pos_ + len);
    pos_ += len;
  }

  void codes(const Huffman& lencode, const Huffman& distcode) {
    for (;;) {
      const int sym = decode(lencode);
      if (sym < 256) {
        emit(uint8_t(sym));
        continue;
      }
      if (sym == 256) return;
      const int ls = sym - 257;
      if (ls >= 29) fail("invalid length symbol");
      const size_t len = kLengthBase[ls] + bits(kLengthExtra[ls]);
      const int ds = decode(distcode);
      if (ds >= 30) fail("invalid distance symbol");
      const size_t dist = kDistBase[ds] + bits(kDistExtra[ds]);
      if (dist > out_.size()) fail("distance " + std::to_string(dist) + " reaches before the start");
      for (size_t k = 0; k < len; ++k) emit(out_[out_.size() - dist]);
    }
  }

  void fixed() {
    static const std::pair<Huffman, Huffman> tables = [] {
      uint8_t lengths[288];
      for (int s = 0; s < 288; ++s) lengths[s] = s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8;
      Huffman lit, dist;
      build_huffman(lit, lengths, 288);
      std::fill(lengths, lengths + 30, 5);
      build_huffman(dist, lengths, 30);
      return std::make_pair(std::move(lit), std::move(dist));
    }();
    codes(tables.first, tables.second);
  }

  void dynamic() {
    const int nlen = int(bits(5)) + 257, ndist = int(bits(5)) + 1, ncode = int(bits(4)) + 4;
    if (nlen > 286 || ndist > 30) fail("too many length or distance codes");
    uint8_t lengths[320] = {};
    for (int i = 0; i < ncode; ++i) lengths[kCodeLengthOrder[i]] = uint8_t(bits(3));
    Huffman lencode, distcode;
    if (!build_huffman(lencode, lengths, 19)) fail("bad code-length code");
    int index = 0;
    while (index < nlen + ndist) {
      int sym = decode(lencode);
      if (sym < 16) {
        lengths[index++] = uint8_t(sym);
        continue;
      }
      uint8_t len = 0;
      int repeat;
      if (sym == 16) {
        if (index == 0) fail("repeat with no previous length");
        len = lengths[index - 1];
        repeat = 3 + int(bits(2));
      } else if (sym == 17) {
        repeat = 3 + int(bits(3));
      } else {
        repeat = 11 + int(bits(7));
      }
      if (index + repeat > nlen + ndist) fail("too many code lengths");
      while (repeat--) lengths[index++] = len;
    }
    if (lengths[256] == 0) fail("no end-of-block code");
    if (!build_huffman(lencode, lengths, nlen)) fail("bad literal/length code");
    if (!build_huffman(distcode, lengths + nlen, ndist)) fail("bad distance code");
    codes(lencode, distcode);
  }

  const uint8_t* data_;
  size_t size_, pos_ = 0, max_;
  uint32_t bitbuf_ = 0;
  int bitcnt_ = 0;
  std::vector<uint8_t> out_;
};

}  // namespace

uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc) {
  static const std::array<uint32_t, 256> table = make_crc_table();
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

uint32_t adler32(const uint8_t* data, size_t size, uint32_t adler) {
  constexpr uint32_t kMod = 65521;
  uint32_t a = adler & 0xFFFF, b = adler >> 16;
  while (size > 0) {
    const size_t n = std::min<size_t>(size, 5552);  // largest run that cannot overflow 32 bits
    for (size_t i = 0; i < n; ++i) {
      a += data[i];
      b += a;
    }
    a %= kMod;
    b %= kMod;
    data += n;
    size -= n;
  }
  return b << 16 | a;
}

std::vector<uint8_t> deflate(const uint8_t* data, size_t size, int effort) {
  std::vector<uint8_t> stored;
  stored.reserve(size + 5 * (size / 65535 + 1));
  write_stored(data, size, stored);
  if (effort <= 0) return stored;
  std::vector<uint8_t> fixed;
  fixed.reserve(size / 4 + 64);
  write_fixed(data, size, effort, fixed);
  return fixed.size() <= stored.size() ? fixed : stored;
}

std::vector<uint8_t> zlib_compress(const uint8_t* data, size_t size, int effort) {
  std::vector<uint8_t> out = {0x78, 0x9C};  // deflate, 32K window, default level; (0x789C % 31 == 0)
  const std::vector<uint8_t> body = deflate(data, size, effort);
  out.insert(out.end(), body.begin(), body.end());
  const uint32_t a = adler32(data, size);
  for (int s = 24; s >= 0; s -= 8) out.push_back(uint8_t(a >> s));
  return out;
}

std::vector<uint8_t> inflate(const uint8_t* data, size_t size, size_t max_output) {
  return Inflater(data, size, max_output).run();
}

std::vector<uint8_t> zlib_decompress(const uint8_t* data, size_t size, size_t max_output) {
  if (size < 6) throw Error("zlib stream: truncated");
  const unsigned cmf = data[0], flg = data[1];
  if ((cmf & 0x0F) != 8 || (cmf >> 4) > 7) throw Error("zlib stream: not deflate with a window of at most 32K");
  if ((cmf * 256 + flg) % 31 != 0) throw Error("zlib stream: header check failed");
  if (flg & 0x20) throw Error("zlib stream: preset dictionaries are not supported");
  Inflater inf(data + 2, size - 2, max_output);
  std::vector<uint8_t> out = inf.run();
  const size_t at = 2 + inf.consumed();
  if (at + 4 > size) throw Error("zlib stream: truncated Adler-32 trailer");
  const uint32_t want = uint32_t(data[at]) << 24 | uint32_t(data[at + 1]) << 16 | uint32_t(data[at + 2]) << 8 | data[at + 3];
  if (adler32(out.data(), out.size()) != want) throw Error("zlib stream: Adler-32 mismatch");
  return out;
}

}  // namespace iflame::render
