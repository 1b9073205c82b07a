// The op table: one struct per op of engine/backend.h, each followed by the sizes it is
// tested at, in three files (this one, op_table_layers.cpp, op_table_training.cpp) in the
// order of backend.h's families. A new op is one struct and one line in its family's add
// function.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/op_table.h"

namespace plinth::test {
namespace {

// Round trips are exact and fill/copy touch only their range: results are known exactly.
// increment adds 1 unless its skip flag is not 0.
struct MemoryTest : OpTest {
  std::string name() const override { return "copy, fill, increment"; }
  void buffers(Buffers& b) const override {
    const std::vector<float> host = b.random(1001);
    std::vector<float> filled(host.size(), 7.0f);
    filled.front() = host.front();
    filled.back() = host.back();
    b.in("source", host);
    b.out("copy", garbage(host.size()), exact_and_equal_to(host));
    b.out("filled", garbage(host.size()), exact_and_equal_to(filled));
    b.in("go", std::vector<float>{0.0f});
    b.in("skip", std::vector<float>{1.0f});
    b.out("counter", std::vector<int64_t>{41}, exact_and_equal_to(std::vector<int64_t>{43}));
  }
  void run(Backend& be, const Args& a) const override {
    const size_t bytes = 1001 * sizeof(float);
    be.copy(a.f32("copy"), a.f32("source"), bytes);
    be.copy(a.f32("filled"), a.f32("source"), bytes);
    be.fill(a.f32("filled") + 1, 999, 7.0f);
    be.synchronize();
    be.increment(a.i64("counter"), nullptr);
    be.increment(a.i64("counter"), a.f32("skip"));
    be.increment(a.i64("counter"), a.f32("go"));
  }
};

}  // namespace

std::vector<std::unique_ptr<OpTest>> op_table() {
  OpList t;
  t.push_back(std::make_unique<MemoryTest>());
  add_layer_ops(t);
  add_training_ops(t);
  return t;
}

}  // namespace plinth::test
