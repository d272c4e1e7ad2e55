// safetensors: header JSON, offsets, dtypes and shapes; a file that parses must serialize and
// parse back to the same tensors.
#include "fuzz_target.h"
#include "io/safetensors.h"

using namespace iflame;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::expect_parse_or_error([&] {
    const SafetensorsFile file = parse_safetensors(data, size, "fuzz.safetensors");
    const std::vector<uint8_t> again = serialize_safetensors(file);
    const SafetensorsFile back = parse_safetensors(again.data(), again.size(), "again.safetensors");
    fuzz::require(back.tensors.size() == file.tensors.size(), "round trip keeps every tensor");
    for (const auto& [name, t] : file.tensors) {
      fuzz::require(back.tensors.at(name).bytes == t.bytes, "round trip keeps the bytes");
    }
  });
  return 0;
}
