// Precompiled header for every LibTorch translation unit (see src/CMakeLists.txt).
#pragma once
#include <torch/torch.h>
