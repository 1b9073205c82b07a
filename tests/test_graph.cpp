// Graphs: model files with branches and merges (and the errors of malformed ones), the
// executor's gradients where nodes fan out, and BatchNorm's running statistics through
// training, freezing, checkpoints and resume. CPU backend; random images for gradients.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine/checkpoint.h"
#include "engine/error.h"
#include "engine/executor.h"
#include "engine/safetensors.h"
#include "engine/trainer.h"
#include "engine_fixtures.h"

using namespace plinth;

namespace {

using Json = nlohmann::json;

Model graph_model(const char* layers) {
  const std::string j = std::string(R"({"name": "graph", "input": [2, 8, 8], "layers": [)") +
                        layers + R"(], "loss": "categorical_crossentropy"})";
  return test::model_from(j.c_str());
}

// A residual block on a stem that fans out to the block and its identity shortcut; the
// block's merge feeds both a projection and the add, and a concat closes it.
const char* kResidual = R"(
  {"type": "conv2d", "name": "stem", "filters": 3, "kernel": 3, "padding": 1, "use_bias": false},
  {"type": "batchnorm2d", "name": "bn0", "activation": "tanh"},
  {"type": "conv2d", "name": "c1", "filters": 3, "kernel": 3, "padding": 1, "activation": "tanh"},
  {"type": "conv2d", "name": "c2", "filters": 3, "kernel": 3, "padding": 1, "use_bias": false},
  {"type": "batchnorm2d", "name": "bn2"},
  {"type": "add", "name": "add1", "input": ["bn2", "bn0"], "activation": "tanh"},
  {"type": "conv2d", "name": "proj", "filters": 2, "kernel": 1, "stride": 2, "use_bias": false},
  {"type": "avgpool2d", "name": "pool", "input": "add1", "size": 2},
  {"type": "concat", "name": "cat", "input": ["pool", "proj"]},
  {"type": "global_avgpool", "name": "gap"},
  {"type": "batchnorm1d", "name": "bnf", "activation": "sigmoid"},
  {"type": "dense", "name": "fc", "units": 4, "activation": "softmax"})";

// One node consumed twice by the same add; a chain through it.
const char* kTwice = R"(
  {"type": "conv2d", "name": "c1", "filters": 2, "kernel": 3, "activation": "tanh"},
  {"type": "add", "name": "double", "input": ["c1", "c1"]},
  {"type": "conv2d", "name": "c2", "filters": 2, "kernel": 3, "activation": "sigmoid"},
  {"type": "add", "name": "sum3", "input": ["c2", "c2", "c2"], "activation": "tanh"},
  {"type": "flatten", "name": "flat"},
  {"type": "dense", "name": "fc", "units": 4, "activation": "softmax"})";

// Flatten views where nodes fan out: the conv's output feeds a flatten and a global
// pooling (the flatten's gradient then needs a buffer of its own), and the flatten feeds
// two dense layers (its gradient is summed from both).
const char* kViews = R"(
  {"type": "conv2d", "name": "c1", "filters": 3, "kernel": 3, "stride": 2, "activation": "tanh"},
  {"type": "flatten", "name": "flat"},
  {"type": "global_avgpool", "name": "gap", "input": "c1"},
  {"type": "dense", "name": "fa", "units": 5, "input": "flat", "activation": "tanh"},
  {"type": "dense", "name": "fb", "units": 4, "input": "flat"},
  {"type": "concat", "name": "cat", "input": ["fa", "gap", "fb"]},
  {"type": "dense", "name": "fc", "units": 4, "activation": "softmax"})";

// The same with the flatten consumed by a later node than the pooling: now the flatten's
// gradient is the conv's directly, and the pooling's is added to it.
const char* kViewsFirst = R"(
  {"type": "conv2d", "name": "c1", "filters": 3, "kernel": 3, "stride": 2, "activation": "tanh"},
  {"type": "global_avgpool", "name": "gap"},
  {"type": "flatten", "name": "flat", "input": "c1"},
  {"type": "dense", "name": "fa", "units": 5, "activation": "tanh"},
  {"type": "concat", "name": "cat", "input": ["gap", "fa", "flat"]},
  {"type": "dense", "name": "fc", "units": 4, "activation": "softmax"})";

// Every parameter's gradient along a random direction against a central difference of
// the loss (smooth activations only, so no kink is near).
void check_model_gradients(const Model& m, uint64_t seed) {
  auto be = make_cpu_backend(1);
  Parameters p(m, *be);
  p.initialize(seed);
  const int batch = 4;
  Executor exec(m, p, *be, batch, true);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> unit;
  std::vector<float> input(exec.input().numel());
  for (float& v : input) v = unit(rng);
  be->upload(exec.input().data, input.data(), input.size() * sizeof(float));
  const std::vector<int32_t> labels{3, 1, 0, 2};
  be->upload(exec.labels(), labels.data(), labels.size() * sizeof(int32_t));
  auto loss_at = [&](const std::vector<float>& values) {
    p.upload(p.values(), values);
    exec.reset_stats();
    exec.forward(true);
    exec.loss(batch, true);
    float s[kStatsSize];
    be->download(s, exec.stats(), sizeof s);
    return static_cast<double>(s[kStatLossSum]) / s[kStatCount];
  };
  const std::vector<float> base = p.download(p.values());
  loss_at(base);
  std::vector<float> nan(p.size(), std::nanf(""));
  p.upload(p.grads(), nan);  // every gradient must be written
  exec.backward();
  const std::vector<float> grad = p.download(p.grads());
  std::normal_distribution<float> normal;
  const double h = 3e-3;
  for (const ParamEntry& e : p.entries()) {
    std::vector<float> dir(e.shape.numel());
    double norm = 0, analytic = 0;
    for (float& d : dir) norm += (d = normal(rng)) * d;
    for (size_t i = 0; i < dir.size(); ++i)
      analytic += grad[e.offset + i] * (dir[i] /= static_cast<float>(std::sqrt(norm)));
    std::vector<float> plus = base, minus = base;
    for (size_t i = 0; i < dir.size(); ++i) {
      plus[e.offset + i] += static_cast<float>(h * dir[i]);
      minus[e.offset + i] -= static_cast<float>(h * dir[i]);
    }
    const double numeric = (loss_at(plus) - loss_at(minus)) / (2 * h);
    INFO(e.name << ": analytic " << analytic << " numeric " << numeric);
    CHECK(std::abs(analytic - numeric) <= 1e-2 * std::abs(numeric) + 2e-4);
  }
}

std::string error_of(const char* layers) {
  try {
    graph_model(layers);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

std::vector<std::byte> buffers_of(const Parameters& p) { return p.download_buffers(); }

float buffer_value(const Parameters& p, const std::string& name, size_t i = 0) {
  const BufferEntry* e = p.find_buffer(name);
  REQUIRE(e);
  const std::vector<std::byte> host = p.download_buffers();
  float v;
  std::memcpy(&v, host.data() + e->offset + i * sizeof v, sizeof v);
  return v;
}

int64_t batches_tracked(const Parameters& p, const std::string& layer) {
  const BufferEntry* e = p.find_buffer(layer + ".num_batches_tracked");
  REQUIRE(e);
  const std::vector<std::byte> host = p.download_buffers();
  int64_t v;
  std::memcpy(&v, host.data() + e->offset, sizeof v);
  return v;
}

// Random 2x8x8 images with labels 0..3, a data set the trainer takes.
Dataset random_images(int count, uint64_t seed) {
  Dataset d;
  d.name = "random";
  d.count = count;
  d.channels = 2;
  d.height = d.width = 8;
  d.classes = 4;
  std::mt19937 rng(static_cast<uint32_t>(seed));
  d.images.resize(static_cast<size_t>(count) * 2 * 64);
  for (uint8_t& v : d.images) v = static_cast<uint8_t>(rng() % 256);
  for (int i = 0; i < count; ++i) d.labels.push_back(static_cast<int32_t>(rng() % 4));
  return d;
}

}  // namespace

TEST_CASE("graph: gradients through fan-out, merges and views match finite differences",
          "[graph][cpu]") {
  SECTION("a residual block with BatchNorm, a projection, concat and pooling") {
    check_model_gradients(graph_model(kResidual), 11);
  }
  SECTION("one node consumed twice, and three times, by one add") {
    check_model_gradients(graph_model(kTwice), 12);
  }
  SECTION("a flatten whose input fans out, feeding two layers") {
    check_model_gradients(graph_model(kViews), 13);
  }
  SECTION("the same, the flatten the last consumer of its input") {
    check_model_gradients(graph_model(kViewsFirst), 14);
  }
}

TEST_CASE("graph: a model file names each node's inputs, and round-trips", "[graph][model]") {
  const Model m = graph_model(kResidual);
  REQUIRE(m.nodes.size() == 12);
  CHECK(m.nodes[0].inputs == std::vector<int>{kModelInput});
  CHECK(m.nodes[5].inputs == std::vector<int>{4, 1});
  CHECK(m.nodes[7].inputs == std::vector<int>{5});
  CHECK(m.nodes[8].inputs == std::vector<int>{7, 6});
  const Json j = m.to_json();
  CHECK(j["layers"][0].count("input") == 0);  // the defaults stay implicit
  CHECK(j["layers"][6].count("input") == 0);
  CHECK(j["layers"][5]["input"] == Json{"bn2", "bn0"});
  CHECK(j["layers"][7]["input"] == "add1");
  CHECK(parse_model(j, "again").to_json() == j);
  const std::vector<NodeShapes> shapes = m.shapes(5);
  CHECK(shapes[8].inputs == std::vector<Shape>{{5, 3, 4, 4}, {5, 2, 4, 4}});
  CHECK(shapes[8].output == Shape{5, 5, 4, 4});
  CHECK(shapes[9].output == Shape{5, 5});
  CHECK_THAT(m.layer_table({"c1"}), Catch::Contains("add1 (add)") && Catch::Contains("bn2, bn0") &&
                                        Catch::Contains("pool, proj") &&
                                        Catch::Contains("84 (frozen)  bn0\n"));
}

TEST_CASE("graph: malformed graphs name the file, the layer and what is wrong", "[graph][model]") {
  const std::string conv = R"({"type": "conv2d", "name": "c1", "filters": 2, "kernel": 3},)";
  const std::string head = R"(, {"type": "flatten"},
      {"type": "dense", "name": "fc", "units": 2, "activation": "softmax"})";
  auto with = [&](const std::string& middle) { return error_of((conv + middle + head).c_str()); };
  CHECK_THAT(with(R"({"type": "add", "name": "a", "input": ["c1", "c9"]})"),
             Catch::StartsWith("test-model.layers[1].input: layer 'a' names 'c9'") &&
                 Catch::Contains("no layer has that name"));
  CHECK_THAT(with(R"({"type": "add", "name": "a", "input": ["c1", "fc"]})"),
             Catch::Contains("layers[1].input: layer 'a' names 'fc', which comes later") &&
                 Catch::Contains("cycles"));
  CHECK_THAT(with(R"({"type": "add", "name": "a", "input": ["c1", "a"]})"),
             Catch::Contains("layer 'a' names itself"));
  CHECK_THAT(with(R"({"type": "add", "name": "a", "input": "c1"})"),
             Catch::Contains("layers[1].input: layer 'a' (add) takes 2 or more inputs, got 1"));
  CHECK_THAT(with(R"({"type": "conv2d", "name": "c2", "filters": 2, "kernel": 1,
                      "input": ["c1", "c1"]})"),
             Catch::Contains("layer 'c2' (conv2d) takes 1 input, got 2"));
  CHECK_THAT(with(R"({"type": "add", "name": "a", "input": []})"),
             Catch::Contains("layers[1].input: expected a layer name or a non-empty list"));
  CHECK_THAT(with(R"({"type": "add", "name": "a", "input": ["c1", 3]})"),
             Catch::Contains("layers[1].input: expected a layer name or a non-empty list"));
  CHECK_THAT(with(R"({"type": "activation", "name": "input", "activation": "relu"})"),
             Catch::Contains("layers[1].name: 'input' names the model's input"));
  // A merge of two shapes names the node, both shapes and the inputs.
  CHECK_THAT(with(R"({"type": "conv2d", "name": "c2", "filters": 3, "kernel": 1},
                     {"type": "add", "name": "a", "input": ["c1", "c2"]})"),
             Catch::StartsWith("test-model: layer a: add needs inputs of one shape") &&
                 Catch::Contains("input 2 is [1, 3, 6, 6] and input 1 is [1, 2, 6, 6]") &&
                 Catch::Contains("(inputs: c1, c2)"));
  CHECK_THAT(with(R"({"type": "maxpool2d", "name": "p"},
                     {"type": "concat", "name": "cat", "input": ["c1", "p"]})"),
             Catch::Contains("layer cat: concat needs inputs that differ in dimension 1 only") &&
                 Catch::Contains("(inputs: c1, p)"));
  // A node whose output nothing consumes: a wrong name in an "input", most likely.
  CHECK_THAT(with(R"({"type": "conv2d", "name": "lost", "filters": 2, "kernel": 1},
                     {"type": "activation", "name": "act", "input": "c1", "activation": "relu"})"),
             Catch::StartsWith("test-model.layers[1]: no layer consumes the output of layer "
                               "'lost'"));
  // The model's input may be named, also twice.
  CHECK_NOTHROW(graph_model(R"({"type": "add", "name": "a", "input": ["input", "input"]},
      {"type": "flatten"}, {"type": "dense", "units": 2, "activation": "softmax"})"));
}

TEST_CASE("graph: BatchNorm learns with batch statistics and tracks PyTorch's running ones",
          "[graph][cpu]") {
  const Model m = graph_model(kResidual);
  auto be = make_cpu_backend(2);
  Parameters p(m, *be);
  p.initialize(3);
  CHECK(p.find("bn0.weight"));
  CHECK(p.find("bn0.running_mean") == nullptr);  // a buffer, not a parameter
  REQUIRE(p.find_buffer("bn0.running_var"));
  CHECK(buffer_value(p, "bn0.running_var") == 1.0f);
  CHECK(buffer_value(p, "bn0.running_mean") == 0.0f);
  std::vector<float> v = p.download(p.values());
  CHECK(v[p.find("bn0.weight")->offset] == 1.0f);  // weight starts at one, bias at zero
  CHECK(v[p.find("bn0.bias")->offset] == 0.0f);

  TrainOptions o;
  o.epochs = 1;
  o.batch_size = 8;
  Trainer t(m, *be, p, o);
  t.fit(random_images(64, 5), Dataset{});
  CHECK(batches_tracked(p, "bn0") == 8);
  CHECK(batches_tracked(p, "bnf") == 8);
  CHECK(buffer_value(p, "bn0.running_var") != 1.0f);
  CHECK(buffer_value(p, "bn2.running_mean") != 0.0f);
  // Buffers get no gradient and no optimizer state: the trainable count excludes them.
  CHECK(p.count() == m.parameter_count());

  // Evaluation reads the running statistics and leaves them as they are.
  const std::vector<std::byte> held = buffers_of(p);
  t.evaluate(random_images(20, 6));
  CHECK(buffers_of(p) == held);
}

TEST_CASE("graph: a frozen BatchNorm keeps its statistics and normalises with them",
          "[graph][cpu]") {
  const Model m = graph_model(kResidual);
  auto be = make_cpu_backend(1);
  Parameters p(m, *be);
  p.initialize(4);
  TrainOptions o;
  o.epochs = 1;
  o.batch_size = 8;
  Trainer(m, *be, p, o).fit(random_images(32, 7), Dataset{});  // statistics away from 0 and 1
  const std::vector<std::byte> before = buffers_of(p);
  const std::vector<float> weights = p.download(p.values());
  o.freeze = {"bn0", "bn2"};
  Trainer(m, *be, p, o).fit(random_images(32, 8), Dataset{});
  const std::vector<float> after = p.download(p.values());
  for (const std::string name :
       {"bn0.running_mean", "bn0.running_var", "bn2.running_var", "bn0.num_batches_tracked"}) {
    const BufferEntry* e = p.find_buffer(name);
    INFO(name);
    const std::vector<std::byte> now = buffers_of(p);
    CHECK(std::memcmp(now.data() + e->offset, before.data() + e->offset, e->bytes()) == 0);
  }
  CHECK(batches_tracked(p, "bnf") == 8);  // not frozen: 4 + 4 batches
  for (const char* name : {"bn0.weight", "bn2.bias"}) {
    const ParamEntry* e = p.find(name);
    CHECK(std::equal(after.begin() + e->offset, after.begin() + e->offset + e->shape.numel(),
                     weights.begin() + e->offset));
  }

  // In a training step, the frozen layer's output is the evaluation output.
  Executor training(m, p, *be, 4, true, {false, true});  // bn0 frozen
  Executor evaluation(m, p, *be, 4, false);
  std::vector<float> input(training.input().numel());
  std::mt19937 rng(9);
  for (float& x : input) x = static_cast<float>(rng() % 100) / 100;
  for (Executor* e : {&training, &evaluation}) {
    be->upload(e->input().data, input.data(), input.size() * sizeof(float));
    e->forward(e == &training);
  }
  auto output = [&](const Executor& e, size_t node) {
    std::vector<float> host(e.node_output(node).numel());
    be->download(host.data(), e.node_output(node).data, host.size() * sizeof(float));
    return host;
  };
  CHECK(output(training, 1) == output(evaluation, 1));  // bn0, frozen
  CHECK(output(training, 4) != output(evaluation, 4));  // bn2, batch statistics
}

TEST_CASE("graph: running statistics are saved under PyTorch's names, loaded and resumed exactly",
          "[graph][cpu][checkpoint]") {
  const Model m = graph_model(kResidual);
  const Dataset train = random_images(48, 10);
  auto trained = [&](int epochs) {
    auto be = make_cpu_backend(2);
    Parameters p(m, *be);
    p.initialize(5);
    TrainOptions o;
    o.epochs = epochs;
    o.batch_size = 8;
    o.seed = 5;
    Trainer(m, *be, p, o).fit(train, Dataset{});
    return std::pair{p.download(p.values()), buffers_of(p)};
  };
  const auto uninterrupted = trained(2);

  const std::string dir = test::temp_dir("graph-resume");
  const std::string ckpt = dir + "/run.safetensors";
  {
    auto be = make_cpu_backend(2);
    Parameters p(m, *be);
    p.initialize(5);
    TrainOptions o;
    o.epochs = 1;
    o.batch_size = 8;
    o.seed = 5;
    const TrainState state = Trainer(m, *be, p, o).fit(train, Dataset{});
    save_checkpoint(ckpt, p, {m.to_json(), {}, state});
  }
  const SafetensorsFile f = load_safetensors(ckpt);
  CHECK(f.tensor("bn0.running_mean").dtype == SafetensorsDtype::F32);
  CHECK(f.tensor("bn0.running_mean").shape == std::vector<int64_t>{3});
  CHECK(f.tensor("bn0.num_batches_tracked").dtype == SafetensorsDtype::I64);
  CHECK(f.tensor("bn0.num_batches_tracked").shape.empty());  // a scalar, as PyTorch's
  CHECK(f.int64_tensor("bnf.num_batches_tracked") == std::vector<int64_t>{6});
  CHECK_FALSE(load_safetensors(optimizer_state_path(ckpt)).contains("m.bn0.running_mean"));

  auto be = make_cpu_backend(2);
  const CheckpointMeta meta = read_checkpoint_meta(ckpt);
  Parameters p(m, *be);
  p.initialize(99);
  const LoadReport r = load_weights(ckpt, p, true);
  CHECK(r.complete());
  load_optimizer_state(ckpt, p);
  TrainOptions o;
  o.epochs = 2;
  o.batch_size = 8;
  o.seed = 5;
  Trainer(m, *be, p, o).fit(train, Dataset{}, meta.state);
  CHECK(p.download(p.values()) == uninterrupted.first);
  CHECK(buffers_of(p) == uninterrupted.second);

  // A reset layer keeps its fresh buffers; a missing buffer is reported.
  Parameters q(m, *be);
  q.initialize(1);
  load_weights(ckpt, q, true, {"bn0"});
  CHECK(buffer_value(q, "bn0.running_var") == 1.0f);
  CHECK(batches_tracked(q, "bn2") == 6);
}

TEST_CASE("graph: a skipped step leaves the running statistics as they were", "[graph][cpu]") {
  const Model m = graph_model(kResidual);
  auto be = make_cpu_backend(1);
  Parameters p(m, *be);
  p.initialize(6);
  const std::vector<std::byte> before = buffers_of(p);
  std::vector<float> v = p.download(p.values());
  v[p.find("c1.weight")->offset] = std::nanf("");  // every step's bn2 statistics are NaN
  p.upload(p.values(), v);
  TrainOptions o;
  o.epochs = 1;
  o.batch_size = 8;
  o.on_nan = OnNan::skip_step;
  Trainer(m, *be, p, o).fit(random_images(32, 11), Dataset{});
  CHECK(buffers_of(p) == before);
}
