#include "cli/commands.h"
#include "util/error.h"
namespace iflame::cli {
int run_prepare(int, char**) { throw Error("prepare: not built yet"); }
}  // namespace iflame::cli
