// The folder layout's promises, read from the sources: the library (engine/, datasets/,
// cpu_fallback/, kernels/) includes nothing from the tool (cli/), and the tool and the
// public headers include only public headers of the library (the plinth target's HEADERS
// file set, the ones `cmake --install` installs).
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const std::string kRoot = PLINTH_SOURCE_DIR;

// The files under a source folder, as paths relative to the source tree.
std::vector<std::string> sources_in(const std::string& folder) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(kRoot + "/" + folder)) {
    const std::string ext = e.path().extension().string();
    if (e.is_regular_file() && (ext == ".h" || ext == ".cpp" || ext == ".cu" || ext == ".cuh"))
      out.push_back(fs::relative(e.path(), kRoot).string());
  }
  return out;
}

// The project headers a file includes with quotes ("engine/model.h").
std::vector<std::string> quoted_includes(const std::string& path) {
  static const std::regex include(R"(^\s*#\s*include\s*"([^"]+)\")");
  std::ifstream in(kRoot + "/" + path);
  std::vector<std::string> out;
  std::smatch m;
  for (std::string line; std::getline(in, line);)
    if (std::regex_search(line, m, include)) out.push_back(m[1]);
  return out;
}

bool is_library_header(const std::string& include) {
  for (const char* folder : {"engine/", "datasets/", "cpu_fallback/", "kernels/", "distributed/"})
    if (include.rfind(folder, 0) == 0) return true;
  return false;
}

std::set<std::string> public_headers() {
  std::ifstream in(PLINTH_PUBLIC_HEADERS_FILE);
  std::set<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.insert(fs::relative(line, kRoot).string());
  return out;
}

}  // namespace

TEST_CASE("layout: the library includes nothing from the tool's folder", "[layout]") {
  size_t files = 0;
  for (const char* folder : {"engine", "datasets", "cpu_fallback", "kernels", "distributed"}) {
    for (const std::string& file : sources_in(folder)) {
      ++files;
      for (const std::string& include : quoted_includes(file)) {
        INFO(file << " includes " << include);
        CHECK(include.rfind("cli/", 0) != 0);
      }
    }
  }
  CHECK(files > 50);
}

TEST_CASE("layout: the tool and the public headers use only public library headers", "[layout]") {
  const std::set<std::string> public_set = public_headers();
  REQUIRE(public_set.count("engine/plinth.h"));
  REQUIRE(public_set.count("engine/trainer.h"));
  CHECK_FALSE(public_set.count("engine/rng.h"));
  std::vector<std::string> users = sources_in("cli");
  users.insert(users.end(), public_set.begin(), public_set.end());
  size_t library_includes = 0;
  for (const std::string& file : users) {
    for (const std::string& include : quoted_includes(file)) {
      if (!is_library_header(include)) continue;
      ++library_includes;
      INFO(file << " includes the internal header " << include);
      CHECK(public_set.count(include));
    }
  }
  CHECK(library_includes > 40);  // the scan sees the includes it checks
}

TEST_CASE("layout: only distributed/ includes MPI's and NCCL's headers", "[layout]") {
  // A build without MPI or NCCL compiles everything else, and no public header needs them.
  static const std::regex include(R"(^\s*#\s*include\s*[<"](mpi|nccl)[^>"]*\.h[>"])");
  size_t mpi_users = 0;
  for (const char* folder :
       {"engine", "datasets", "cpu_fallback", "kernels", "cli", "distributed", "tests"}) {
    for (const std::string& file : sources_in(folder)) {
      std::ifstream in(kRoot + "/" + file);
      for (std::string line; std::getline(in, line);) {
        if (!std::regex_search(line, include)) continue;
        INFO(file << ": " << line);
        CHECK(file.rfind("distributed/", 0) == 0);
        ++mpi_users;
      }
    }
  }
  CHECK(mpi_users >= 2);  // the scan sees distributed/'s own includes
}

// ctest lists each test case by name and cuts a name at ';': such a test case would run no
// test and pass. A name may be several string literals over several lines: all are read.
TEST_CASE("layout: no test case name holds a semicolon, which ctest would cut", "[layout]") {
  static const std::regex name(R"(TEST_CASE\(\s*((?:"[^"]*"\s*)+),)");
  for (const std::string& file : sources_in("tests")) {
    std::ifstream in(kRoot + "/" + file);
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    for (std::sregex_iterator it(text.begin(), text.end(), name), end; it != end; ++it) {
      INFO(file << ": " << (*it)[1].str());
      CHECK((*it)[1].str().find(';') == std::string::npos);
    }
  }
}
