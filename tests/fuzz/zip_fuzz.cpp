// The zip reader (stored entries, zip64, CRC checks): every entry it lists must read back or
// fail with an iflame::Error, and every span must lie inside the input.
#include "fuzz_target.h"
#include "io/zip.h"

using namespace iflame;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::expect_parse_or_error([&] {
    ZipReader zip(data, size, "fuzz.zip");
    for (const ZipEntry& e : zip.entries()) {
      fuzz::expect_parse_or_error([&] {
        const ZipReader::Span s = zip.read(e);
        fuzz::require(s.data >= data && s.size <= size && size_t(s.data - data) <= size - s.size, "span inside input");
      });
    }
  });
  return 0;
}
