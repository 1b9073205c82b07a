// libFuzzer target for the numbers of the command line: the tool's option parser and the
// strict number parsers every option and metadata field goes through
// (fuzz/cli_numbers_check.h says what must hold).
#include <cstdint>

#include "cli_numbers_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  plinth::fuzz::check_cli_numbers(data, size);
  return 0;
}
