// One harness per mesh reader we wrote (IFLAME_FUZZ_READER names it: obj, off, pmd, g3d, md2,
// spm, pie). A mesh that comes back must be valid and must tokenize.
#include <vector>

#include "fuzz_target.h"
#include "mesh/mesh.h"
#include "mesh/readers.h"
#include "tokenizer/tokenizer.h"

using namespace iflame;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  fuzz::expect_parse_or_error([&] {
    const Mesh mesh = readers::IFLAME_FUZZ_READER(bytes, "fuzz.mesh");
    for (const Tri& t : mesh.faces) {
      for (int32_t v : t) fuzz::require(v >= 0 && size_t(v) < mesh.vertices.size(), "face index in range");
    }
    const CanonicalMesh canonical = canonicalize(mesh);
    encode_sequence(canonical);
  });
  return 0;
}
