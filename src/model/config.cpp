#include "model/torch_compat.h"
