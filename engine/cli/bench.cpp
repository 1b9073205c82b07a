// plinth bench (written next).
#include "engine/cli/commands.h"
#include "engine/error.h"
namespace plinth::cli {
int bench_command(int, char**) { fail("bench: not built yet"); }
}  // namespace plinth::cli
