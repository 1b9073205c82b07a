// Engine-level tests: the executor's gradients, training, reproducibility, resume,
// freezing, fine-tuning by name. CPU backend, random images for the gradients, small
// slices of real Fashion-MNIST for training.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <random>

#include "engine/checkpoint.h"
#include "engine/error.h"
#include "engine/executor.h"
#include "engine/trainer.h"
#include "engine_fixtures.h"

using namespace plinth;

namespace {

const char* kSmallCnn = R"({
  "name": "small", "input": [1, 28, 28],
  "layers": [
    {"type": "conv2d", "name": "conv1", "filters": 4, "kernel": 3, "stride": 2, "padding": 1,
     "activation": "tanh"},
    {"type": "maxpool2d", "name": "pool1", "size": 2},
    {"type": "conv2d", "name": "conv2", "filters": 6, "kernel": 3, "activation": "sigmoid"},
    {"type": "flatten", "name": "flatten"},
    {"type": "dense", "name": "fc1", "units": 12, "activation": "tanh"},
    {"type": "dropout", "name": "drop", "rate": 0.25},
    {"type": "dense", "name": "fc2", "units": 10, "activation": "softmax"}
  ],
  "loss": "categorical_crossentropy"
})";

TrainOptions quick_options(int epochs = 1, int batch = 32) {
  TrainOptions o;
  o.epochs = epochs;
  o.batch_size = batch;
  return o;
}

// Calls a function at every epoch end; it returns false to stop the run.
struct OnEpochEnd : TrainHook {
  std::function<bool(const TrainState&)> call;
  explicit OnEpochEnd(std::function<bool(const TrainState&)> f) : call(std::move(f)) {}
  bool on_epoch_end(const EpochRecord&, const TrainState& state) override { return call(state); }
};

std::vector<float> weights_after(const Model& m, const Dataset& train, uint64_t seed, int threads,
                                 int epochs) {
  auto be = make_cpu_backend(threads);
  Parameters p(m, *be);
  p.initialize(seed);
  TrainOptions o = quick_options(epochs);
  o.seed = seed;
  Trainer t(m, *be, p, o);
  t.fit(train, Dataset{});
  return p.download(p.values());
}

}  // namespace

TEST_CASE("executor: backpropagated gradients match finite differences of the loss",
          "[engine][cpu]") {
  nlohmann::json j = nlohmann::json::parse(kSmallCnn);
  j["layers"][5]["rate"] = 0.0;  // dropout's mask path runs, but the loss stays deterministic
  const Model m = parse_model(j, "gradcheck");
  auto be = make_cpu_backend(1);
  Parameters p(m, *be);
  p.initialize(7);
  Executor exec(m, p, *be, 3, true);
  const std::vector<int32_t> labels{3, 7, 0};
  be->upload(exec.labels(), labels.data(), labels.size() * sizeof(int32_t));
  // The loss, and every node's output in `outputs`.
  auto loss_at = [&](const std::vector<float>& values, std::vector<float>& outputs) {
    p.upload(p.values(), values);
    exec.reset_stats();
    exec.forward(true);
    exec.loss(3, true);
    float s[kStatsSize];
    be->download(s, exec.stats(), sizeof s);
    outputs.clear();
    for (size_t i = 0; i < exec.node_count(); ++i) {
      const Tensor& t = exec.node_output(i);
      outputs.resize(outputs.size() + t.numel());
      be->download(outputs.data() + outputs.size() - t.numel(), t.data, t.numel() * sizeof(float));
    }
    return static_cast<double>(s[kStatLossSum]) / s[kStatCount];
  };
  // When a step moves a max-pooling window's two largest inputs past each other, the
  // maximum changes hands within the step: a kink, where the loss has no derivative to
  // compare. That window's output then has a second difference that is a large part of its
  // first; smooth outputs have |v+ - 2 v0 + v-| ~ h^2 |v''|, far below (1e-6: float noise).
  auto kink_within_step = [](const std::vector<float>& base, const std::vector<float>& plus,
                             const std::vector<float>& minus) {
    for (size_t i = 0; i < base.size(); ++i) {
      const double first = static_cast<double>(plus[i]) - minus[i];
      const double second = static_cast<double>(plus[i]) - 2.0 * base[i] + minus[i];
      if (std::abs(second) > 0.1 * std::abs(first) + 1e-6) return true;
    }
    return false;
  };
  struct Probe {
    std::string name;
    double analytic, numeric;
  };
  // Random images and labels: the check needs no data set. Dense random pixels give many
  // near-ties, so a draw whose probes meet a kink is replaced by the next draw: the check
  // runs at a point where the loss is differentiable within every step.
  std::mt19937 pixels(11);
  std::uniform_real_distribution<float> unit;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  // The float loss rounds by ~3e-7, 5e-5 once divided by 2h: a quarter of the absolute
  // tolerance. A larger step meets more kinks (1e-2 meets one at nearly every draw).
  const double h = 3e-3;
  std::vector<Probe> probes;
  int draws = 0;
  for (bool smooth = false; !smooth; ++draws) {
    REQUIRE(draws < 20);  // a kink near every point: a broken forward, not bad luck
    std::vector<float> input(exec.input().numel());
    for (float& v : input) v = unit(pixels);
    be->upload(exec.input().data, input.data(), input.size() * sizeof(float));
    const std::vector<float> base = p.download(p.values());
    std::vector<float> base_outputs, plus_outputs, minus_outputs;
    loss_at(base, base_outputs);
    exec.backward();
    const std::vector<float> grad = p.download(p.grads());
    probes.clear();
    smooth = true;
    for (const ParamEntry& e : p.entries()) {
      // Directional derivative along a random unit direction: robust to float rounding.
      std::vector<float> dir(e.shape.numel());
      double norm = 0;
      for (float& d : dir) norm += (d = normal(rng)) * d;
      double analytic = 0;
      for (size_t i = 0; i < dir.size(); ++i)
        analytic += grad[e.offset + i] * (dir[i] /= std::sqrt(norm));
      std::vector<float> plus = base, minus = base;
      for (size_t i = 0; i < dir.size(); ++i) {
        plus[e.offset + i] += static_cast<float>(h * dir[i]);
        minus[e.offset + i] -= static_cast<float>(h * dir[i]);
      }
      const double up = loss_at(plus, plus_outputs), down = loss_at(minus, minus_outputs);
      if (kink_within_step(base_outputs, plus_outputs, minus_outputs)) {
        smooth = false;
        break;
      }
      probes.push_back({e.name, analytic, (up - down) / (2 * h)});
    }
    p.upload(p.values(), base);
  }
  for (const Probe& probe : probes) {
    INFO(probe.name << ": analytic " << probe.analytic << " numeric " << probe.numeric);
    CHECK(std::abs(probe.analytic - probe.numeric) <= 1e-2 * std::abs(probe.numeric) + 2e-4);
  }
  CHECK(probes.size() == p.entries().size());
}

TEST_CASE("training: the seed CNN's loss falls and accuracy rises on Fashion-MNIST",
          "[engine][cpu]") {
  REQUIRE_FASHION();
  const Model m = test::seed_cnn();
  auto be = make_cpu_backend(0);
  Parameters p(m, *be);
  p.initialize(1);
  Trainer t(m, *be, p, quick_options(2));
  const Dataset train = test::head(test::fashion_train(), 3200);
  Dataset val = test::fashion_train();
  val = test::head(val, 5000);  // measured before training on the same images as below
  const EvalResult before = t.evaluate(val);
  const TrainState s = t.fit(train, Dataset{});
  const EvalResult after = t.evaluate(val);
  REQUIRE(s.history.size() == 2);
  CHECK(s.history[1].loss < s.history[0].loss);
  CHECK(after.loss < 0.8 * before.loss);
  CHECK(after.accuracy > 0.7);
  CHECK(before.accuracy < 0.3);
}

TEST_CASE("training: the same seed and threads give bit-identical weights, another seed does not",
          "[engine][cpu]") {
  REQUIRE_FASHION();
  const Model m = test::model_from(kSmallCnn);
  const Dataset train = test::head(test::fashion_train(), 640);
  const auto a = weights_after(m, train, 5, 2, 1);
  const auto b = weights_after(m, train, 5, 2, 1);
  const auto c = weights_after(m, train, 6, 2, 1);
  CHECK(a == b);
  CHECK(a != c);
  // The counter-based generators and fixed reduction orders make it independent of the
  // thread count too.
  CHECK(weights_after(m, train, 5, 1, 1) == a);
}

TEST_CASE(
    "training: a run stopped after epoch 1 and resumed from its checkpoint ends bit-identical",
    "[engine][cpu][checkpoint]") {
  REQUIRE_FASHION();
  const Model m = test::model_from(kSmallCnn);
  const Dataset train = test::head(test::fashion_train(), 640);
  const std::vector<float> uninterrupted = weights_after(m, train, 9, 2, 3);

  const std::string dir = test::temp_dir("resume");
  const std::string ckpt = dir + "/run.safetensors";
  {
    auto be = make_cpu_backend(2);
    Parameters p(m, *be);
    p.initialize(9);
    TrainOptions o = quick_options(3);
    o.seed = 9;
    Trainer t(m, *be, p, o);
    OnEpochEnd save_then_stop([&](const TrainState& s) {
      save_checkpoint(ckpt, p, {m.to_json(), {}, s});
      return s.epoch < 1;  // stop after the first epoch, as a killed run would
    });
    t.fit(train, Dataset{}, {}, {&save_then_stop});
  }
  auto be = make_cpu_backend(2);
  const CheckpointMeta meta = read_checkpoint_meta(ckpt);
  const Model resumed_model = parse_model(meta.model, ckpt);
  Parameters p(resumed_model, *be);
  load_weights(ckpt, p, true);
  load_optimizer_state(ckpt, p);
  CHECK(meta.state.epoch == 1);
  CHECK(p.download_step() == 20);
  TrainOptions o = quick_options(3);
  o.seed = 9;
  Trainer t(resumed_model, *be, p, o);
  const TrainState end = t.fit(train, Dataset{}, meta.state);
  CHECK(end.epoch == 3);
  CHECK(end.history.size() == 3);
  CHECK(p.download(p.values()) == uninterrupted);
}

TEST_CASE("training: frozen layers keep their weights, the others learn", "[engine][cpu]") {
  REQUIRE_FASHION();
  const Model m = test::model_from(kSmallCnn);
  auto be = make_cpu_backend(2);
  Parameters p(m, *be);
  p.initialize(4);
  const std::vector<float> before = p.download(p.values());
  TrainOptions o = quick_options(1);
  o.freeze = {"conv1", "conv2"};
  o.lr_multiplier = {{"fc2", 0.0f}};
  Trainer t(m, *be, p, o);
  t.fit(test::head(test::fashion_train(), 320), Dataset{});
  const std::vector<float> after = p.download(p.values());
  for (const ParamEntry& e : p.entries()) {
    bool changed = false;
    for (size_t i = 0; i < e.shape.numel(); ++i)
      changed = changed || before[e.offset + i] != after[e.offset + i];
    INFO(e.name);
    CHECK(changed == (e.name.rfind("fc1", 0) == 0));
  }
  CHECK_THROWS_WITH(Trainer(m, *be, p,
                            [] {
                              TrainOptions x;
                              x.freeze = {"conv9"};
                              return x;
                            }()),
                    Catch::Contains("no layer named 'conv9'"));
}

TEST_CASE("fine-tuning: weights load by name with shape checks, strict by default",
          "[engine][cpu][checkpoint]") {
  const Model source = test::seed_cnn();
  auto be = make_cpu_backend(1);
  Parameters p(source, *be);
  p.initialize(1);
  const std::string dir = test::temp_dir("finetune");
  save_checkpoint(dir + "/src.safetensors", p, {source.to_json(), {}, {}});

  // A new head: five classes instead of ten.
  nlohmann::json j = source.to_json();
  j["layers"].back()["units"] = 5;
  const Model target = parse_model(j, "five-classes");
  Parameters q(target, *be);
  q.initialize(2);
  CHECK_THROWS_WITH(load_weights(dir + "/src.safetensors", q, true),
                    Catch::Contains("fc2.weight") && Catch::Contains("non-strict"));
  const LoadReport r = load_weights(dir + "/src.safetensors", q, false);
  CHECK(r.loaded.size() == 8);
  CHECK(r.mismatched.size() == 2);
  const LoadReport reset = load_weights(dir + "/src.safetensors", q, true, {"fc2"});
  CHECK(reset.loaded.size() == 8);
  const auto src = p.download(p.values()), dst = q.download(q.values());
  const ParamEntry* w = q.find("conv2.weight");
  CHECK(std::equal(dst.begin() + w->offset, dst.begin() + w->offset + w->shape.numel(),
                   src.begin() + p.find("conv2.weight")->offset));
}

TEST_CASE("training: a NaN stops training with the step and the layer named", "[engine][cpu]") {
  REQUIRE_FASHION();
  const Model m = test::model_from(kSmallCnn);
  auto be = make_cpu_backend(1);
  Parameters p(m, *be);
  p.initialize(1);
  std::vector<float> v = p.download(p.values());
  v[p.find("fc1.weight")->offset] = std::nanf("");
  p.upload(p.values(), v);
  Trainer t(m, *be, p, quick_options(1));
  CHECK_THROWS_WITH(
      t.fit(test::head(test::fashion_train(), 64), Dataset{}),
      Catch::Contains("non-finite") && Catch::Contains("step 1") && Catch::Contains("fc1"));
}
