// Prepared datasets (.ifds): once a file opens, every mesh in it must be safe to use the way
// training uses it (geometry, canonicalization with augmentation's path, token sequences).
#include "dataset/format.h"
#include "fuzz_target.h"
#include "tokenizer/tokenizer.h"

using namespace iflame;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fuzz::TempFile file(data, size, ".ifds");
  fuzz::expect_parse_or_error([&] {
    const DatasetReader reader(file.path());
    const TokenizerConfig config = reader.tokenizer_config();
    for (size_t i = 0; i < reader.size(); ++i) {
      const DatasetMesh m = reader.at(i);
      m.sequence(config);
      canonicalize_normalized(m.to_mesh(), config);
    }
    reader.indices(Split::kTrain);
    reader.indices(Split::kVal);
  });
  return 0;
}
