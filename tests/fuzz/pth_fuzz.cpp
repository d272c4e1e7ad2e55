// PyTorch checkpoints: the zip layer, the restricted pickle machine and tensor materializing.
#include "fuzz_target.h"
#include "io/pth.h"

using namespace iflame;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::expect_parse_or_error([&] {
    const PthStateDict sd = parse_pth(data, size, "fuzz.pth");
    for (const auto& [name, t] : sd.tensors) {
      size_t numel = 1;
      for (int64_t d : t.shape) numel *= size_t(d);
      fuzz::require(t.bytes.size() == numel * dtype_size(t.dtype), "tensor bytes match its shape");
    }
  });
  return 0;
}
