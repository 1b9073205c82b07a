// The op table's entries for the ops of graphs and their layers: average pooling, batch
// normalisation, and merging branches (see op_table.h).
#include <fmt/format.h>

#include <string>
#include <vector>

#include "tests/op_table.h"

namespace plinth::test {
namespace {

// ---- average pooling ---------------------------------------------------------------------

struct AvgpoolTest : OpTest {
  PoolShape shape;
  bool big;

  AvgpoolTest(PoolShape s, bool large_batch = false) : shape(s), big(large_batch) {}
  std::string name() const override {
    return fmt::format("avgpool n={} c={} {}x{} window {} stride {}", shape.n, shape.c, shape.h,
                       shape.w, shape.size, shape.stride);
  }
  bool large() const override { return big; }
  void buffers(Buffers& b) const override {
    const size_t in = shape.input_elements(), out = shape.output_elements();
    b.in("x", b.random(in));
    b.in("dy", b.random(out));
    b.out("y", garbage(out), relative(kFp32));
    b.out("dx", garbage(in), relative(kFp32));
  }
  void run(Backend& be, const Args& a) const override {
    be.avgpool_forward(shape, a.f32("x"), a.f32("y"));
    be.avgpool_backward(shape, a.f32("dy"), a.f32("dx"));
  }
};

struct GlobalAvgpoolTest : OpTest {
  size_t planes;
  int spatial;
  bool big;

  GlobalAvgpoolTest(size_t p, int s, bool large_batch = false)
      : planes(p), spatial(s), big(large_batch) {}
  std::string name() const override {
    return fmt::format("global_avgpool planes={} spatial={}", planes, spatial);
  }
  bool large() const override { return big; }
  void buffers(Buffers& b) const override {
    b.in("x", b.random(planes * spatial));
    b.in("dy", b.random(planes));
    b.out("y", garbage(planes), relative(kFp32));
    b.out("dx", garbage(planes * spatial), relative(kFp32));
  }
  void run(Backend& be, const Args& a) const override {
    be.global_avgpool_forward(a.f32("x"), a.f32("y"), planes, spatial);
    be.global_avgpool_backward(a.f32("dy"), a.f32("dx"), planes, spatial);
  }
};

void add_average_pooling(OpList& t) {
  for (const PoolShape s : {PoolShape{.n = 2, .c = 3, .h = 8, .w = 8},
                            PoolShape{.n = 1, .c = 2, .h = 7, .w = 9},  // odd: last row/col unused
                            PoolShape{.n = 2, .c = 2, .h = 9, .w = 9, .size = 3, .stride = 2},
                            PoolShape{.n = 1, .c = 1, .h = 5, .w = 6, .size = 3, .stride = 1},
                            PoolShape{.n = 3, .c = 1, .h = 4, .w = 4, .size = 4, .stride = 4}})
    t.push_back(std::make_unique<AvgpoolTest>(s));
  t.push_back(std::make_unique<AvgpoolTest>(
      PoolShape{.n = kLargeBatch, .c = kConv1Channels, .h = kConv1Height, .w = kConv1Width}, true));
  for (const auto [planes, spatial] : {std::pair<size_t, int>{1, 1}, {6, 49}, {40, 16}, {3, 784}})
    t.push_back(std::make_unique<GlobalAvgpoolTest>(planes, spatial));
  t.push_back(std::make_unique<GlobalAvgpoolTest>(size_t{kLargeBatch} * 64, 49, true));
}

// ---- batch normalisation -----------------------------------------------------------------

// Forward (statistics, running estimates, output), then backward from the saved statistics,
// out of place and in place (dx = dy). The running estimates start away from 0 and 1.
struct BatchNormTest : OpTest {
  BatchNormShape shape;
  bool training;
  Activation act;
  bool big;

  BatchNormTest(BatchNormShape s, bool t, Activation a, bool large_batch = false)
      : shape(s), training(t), act(a), big(large_batch) {}
  std::string name() const override {
    return fmt::format("batchnorm n={} c={} spatial={} {} {}", shape.n, shape.c, shape.spatial,
                       training ? "training" : "evaluation", name_of(act));
  }
  bool large() const override { return big; }
  void buffers(Buffers& b) const override {
    const size_t n = shape.elements(), c = shape.c;
    std::vector<float> x = b.random(n, -2, 3);
    b.in("x", x);
    b.in("weight", b.random(c, 0.5, 1.5));
    b.in("bias", b.random(c));
    b.out("running_mean", b.random(c), relative(kFp32));
    b.out("running_var", b.random(c, 0.5, 2), relative(kFp32));
    b.out("saved_mean", garbage(c), relative(kFp32));
    b.out("saved_invstd", garbage(c), relative(kFp32));
    b.out("y", garbage(n), relative(kFp32));
    b.out("dy", b.random(n), relative(kFp32));
    b.out("dx", garbage(n), relative(kFp32));
    b.out("dweight", garbage(c), relative(kFp32));
    b.out("dbias", garbage(c), relative(kFp32));
    b.out("dweight in place", garbage(c), relative(kFp32));
    b.out("dbias in place", garbage(c), relative(kFp32));
  }
  void run(Backend& be, const Args& a) const override {
    be.batchnorm_forward(shape, training, a.f32("x"), a.f32("weight"), a.f32("bias"),
                         a.f32("running_mean"), a.f32("running_var"), a.f32("saved_mean"),
                         a.f32("saved_invstd"), a.f32("y"), act);
    auto backward = [&](float* dx, const char* dweight, const char* dbias) {
      be.batchnorm_backward(shape, training, act, a.f32("x"), a.f32("y"), a.f32("dy"),
                            a.f32("weight"), a.f32("saved_mean"), a.f32("saved_invstd"), dx,
                            a.f32(dweight), a.f32(dbias));
    };
    backward(a.f32("dx"), "dweight", "dbias");
    backward(a.f32("dy"), "dweight in place", "dbias in place");
  }
};

// Without dx (a first layer): the sums alone.
struct BatchNormSumsTest : OpTest {
  BatchNormShape shape{.n = 4, .c = 3, .spatial = 25};
  std::string name() const override { return "batchnorm_backward without dx"; }
  void buffers(Buffers& b) const override {
    const size_t n = shape.elements(), c = shape.c;
    b.in("x", b.random(n));
    b.in("y", b.random(n));
    b.in("dy", b.random(n));
    b.in("weight", b.random(c));
    b.in("mean", b.random(c));
    b.in("invstd", b.random(c, 0.5, 2));
    b.out("dweight", garbage(c), relative(kFp32));
    b.out("dbias", garbage(c), relative(kFp32));
  }
  void run(Backend& be, const Args& a) const override {
    be.batchnorm_backward(shape, true, Activation::relu, a.f32("x"), a.f32("y"), a.f32("dy"),
                          a.f32("weight"), a.f32("mean"), a.f32("invstd"), nullptr,
                          a.f32("dweight"), a.f32("dbias"));
  }
};

void add_batchnorm(OpList& t) {
  const BatchNormShape shapes[] = {
      {.n = 1, .c = 1, .spatial = 1},  // one value: variance 0, running_var moves towards 0
      {.n = 8, .c = 5},                // batchnorm1d on [8, 5]
      {.n = 3, .c = 4, .spatial = 49},
      {.n = 16, .c = 8, .spatial = 196, .eps = 1e-3f, .momentum = 0.25f},
  };
  for (const BatchNormShape& s : shapes)
    for (const bool training : {true, false})
      for (const Activation act : {Activation::none, Activation::relu})
        t.push_back(std::make_unique<BatchNormTest>(s, training, act));
  t.push_back(std::make_unique<BatchNormTest>(BatchNormShape{.n = 5, .c = 2, .spatial = 100}, true,
                                              Activation::tanh));
  t.push_back(std::make_unique<BatchNormSumsTest>());
  t.push_back(std::make_unique<BatchNormTest>(
      BatchNormShape{.n = kLargeBatch, .c = kConv1Channels, .spatial = kConv1Height * kConv1Width},
      true, Activation::relu, true));
}

// ---- merging branches --------------------------------------------------------------------

// Out of place, then in place (y = a) for the sum of three.
struct AddTest : OpTest {
  size_t n;
  Activation act;

  AddTest(size_t size, Activation a) : n(size), act(a) {}
  std::string name() const override { return fmt::format("add_forward n={} {}", n, name_of(act)); }
  void buffers(Buffers& b) const override {
    b.in("a", b.random(n, -2, 2));
    b.in("b", b.random(n, -2, 2));
    b.out("y", garbage(n), relative(kFp32));
    b.out("sum of three", b.random(n, -2, 2), relative(kFp32));
  }
  void run(Backend& be, const Args& a) const override {
    be.add_forward(a.f32("a"), a.f32("b"), a.f32("y"), n, act);
    be.add_forward(a.f32("sum of three"), a.f32("a"), a.f32("sum of three"), n, Activation::none);
    be.add_forward(a.f32("b"), a.f32("sum of three"), a.f32("sum of three"), n, act);
  }
};

// An input's rows into the middle of wider rows, and back: copies, so exact; the padding
// of the wide rows keeps its garbage.
struct CopyRowsTest : OpTest {
  size_t width, rows, wide;
  CopyRowsTest(size_t w, size_t r, size_t total) : width(w), rows(r), wide(total) {}
  std::string name() const override {
    return fmt::format("copy_rows width={} rows={} into rows of {}", width, rows, wide);
  }
  void buffers(Buffers& b) const override {
    const std::vector<float> narrow = b.random(width * rows);
    std::vector<float> expected = garbage(wide * rows);
    for (size_t r = 0; r < rows; ++r)
      for (size_t i = 0; i < width; ++i) expected[r * wide + 1 + i] = narrow[r * width + i];
    b.in("narrow", narrow);
    b.out("wide", garbage(wide * rows), exact_and_equal_to(expected));
    b.out("back", garbage(width * rows), exact_and_equal_to(narrow));
  }
  void run(Backend& be, const Args& a) const override {
    be.copy_rows(a.f32("wide") + 1, wide, a.f32("narrow"), width, width, rows);
    be.copy_rows(a.f32("back"), width, a.f32("wide") + 1, wide, width, rows);
  }
};

void add_merges(OpList& t) {
  for (const size_t n : {size_t{1}, size_t{1000}, size_t{70001}})
    for (const Activation act : kActivations) t.push_back(std::make_unique<AddTest>(n, act));
  t.push_back(std::make_unique<CopyRowsTest>(1, 1, 3));
  t.push_back(std::make_unique<CopyRowsTest>(49 * 8, 32, 49 * 24));
  t.push_back(std::make_unique<CopyRowsTest>(100, 3, 101));
}

}  // namespace

void add_graph_ops(OpList& t) {
  add_average_pooling(t);
  add_batchnorm(t);
  add_merges(t);
}

}  // namespace plinth::test
