// A gradient checker for one Layer (after Caffe's GradientChecker): the layer, built from
// its model-file object, runs forward and backward on the CPU backend with random input
// and parameters, and its input gradient and every parameter gradient must match finite
// differences of the scalar loss L = sum_i g_i * y_i with fixed random g (so dL/dy = g).
//
// Layers run through the float Backend interface, so the check is in float: L is summed in
// double from float outputs, and each tensor is checked along random unit directions d,
// comparing (L(v + h d) - L(v - h d)) / 2h with the analytic <dL/dv, d>. A direction sums
// the gradient's errors over every element, so a wrong element anywhere moves it; the ops
// under the layers are also checked element by element in double by the op tests
// (tests/gradcheck.h).
//
// Why kTolerance holds: float rounds each y_i by ~6e-8 relative, so an L difference carries
// ~sqrt(outputs) * 1e-7 of noise, a few 1e-5 after dividing by 2h = 2e-2 for the cases here
// (a few hundred outputs of size ~1), against directional derivatives of ~0.1 or more; the
// O(h^2) truncation of a central difference is smaller still. The error is measured against
// the typical directional derivative |dL/dv| / sqrt(n) or more, and one gradient element
// wrong by a typical element's size makes an error of about 1 / sqrt(n): 0.1 for the ~100
// weights of a case here, a hundred times the tolerance (test "the gradient check sees ...").
//
// Nondifferentiable points: inputs are distinct values (tests/gradcheck.h) and the step
// keeps them from swapping order (max pooling's ties, ReLU's kink for an input given away
// from zero); an output that ReLU clamps on one side of a step and not on the other (its
// zero pattern flips) crosses the kink, and gets weight 0 in g, as Caffe skips points near a
// kink. Dropout's mask is drawn from the same seed and step on every forward, so it is fixed.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "engine/layer.h"
#include "engine/tensor.h"
#include "tests/gradcheck.h"

namespace plinth::test {

struct LayerGradientCase {
  nlohmann::json layer;  // its model-file object
  Shape input;           // batch included
};

// The worst direction found for one tensor.
struct GradientError {
  std::string tensor;  // "input" or a parameter's suffix
  double error = 0;    // |numeric - analytic| / max(|numeric|, |analytic|, typical)
  double numeric = 0, analytic = 0;
};

namespace layer_gradcheck {

inline constexpr int kDirections = 4;       // per tensor
inline constexpr double kStep = 1e-2;       // h, the step along a unit direction
inline constexpr double kTolerance = 1e-3;  // see the top of this file

struct DeviceTensor {
  DeviceBuffer buffer;
  Tensor tensor;
};

inline DeviceTensor device_tensor(Backend& be, const Shape& shape) {
  DeviceBuffer buffer(be, shape.numel() * sizeof(float));
  float* data = buffer.as<float>();
  return {std::move(buffer), {shape, data}};
}

inline std::vector<float> download(Backend& be, const Tensor& t) {
  std::vector<float> host(t.numel());
  be.download(host.data(), t.data, host.size() * sizeof(float));
  return host;
}

inline void upload(Backend& be, const Tensor& t, const std::vector<float>& host) {
  be.upload(t.data, host.data(), host.size() * sizeof(float));
}

// One step along a direction and the outputs on both sides of it.
struct Probe {
  std::vector<double> delta;  // plus - minus, as rounded to float
  double h = 0;
  std::vector<float> y_plus, y_minus;
};

}  // namespace layer_gradcheck

// Runs the layer forward and backward and returns the worst error of the input gradient
// and of every parameter gradient. CHECKs on the way that backward overwrites its outputs,
// gives the same parameter gradients without dx (a first layer) and the same dx without
// parameter gradients (a frozen layer).
inline std::vector<GradientError> layer_gradient_errors(Layer& layer, const Shape& in,
                                                        uint64_t seed) {
  using namespace layer_gradcheck;
  auto be = make_cpu_backend(1);
  const Shape out = layer.output_shape(in);
  const std::vector<ParamSpec> specs = layer.param_specs(in);
  const bool view = layer.reshape_only();

  // values[0] is the input, then the parameters (biases random too, so that they matter).
  std::vector<std::string> names{"input"};
  std::vector<std::vector<double>> values{distinct_values(in.numel(), seed)};
  std::vector<double> gaps{2.0 / static_cast<double>(in.numel())};  // of distinct_values
  for (size_t k = 0; k < specs.size(); ++k) {
    names.push_back(specs[k].suffix);
    values.push_back(random_values(specs[k].shape.numel(), seed + 1 + k, -0.5, 0.5));
    gaps.push_back(std::numeric_limits<double>::infinity());  // no order to keep
  }

  DeviceTensor x = device_tensor(*be, in), dx = device_tensor(*be, in);
  DeviceTensor y = view ? DeviceTensor{{}, {out, x.tensor.data}} : device_tensor(*be, out);
  DeviceTensor dy = view ? DeviceTensor{{}, {out, dx.tensor.data}} : device_tensor(*be, out);
  std::vector<DeviceTensor> params, grads;
  std::vector<Tensor> tensors{x.tensor}, param_views, grad_views;
  for (const ParamSpec& s : specs) {
    params.push_back(device_tensor(*be, s.shape));
    grads.push_back(device_tensor(*be, s.shape));
    param_views.push_back(params.back().tensor);
    grad_views.push_back(grads.back().tensor);
    tensors.push_back(params.back().tensor);
  }
  DeviceBuffer scratch(*be, layer.scratch_bytes(in)), step(*be, sizeof(int64_t));
  const int64_t step_value = 3;
  be->upload(step.as<int64_t>(), &step_value, sizeof step_value);
  layer.prepare(*be, in);
  LayerIO io{*be,        x.tensor,           y.tensor, dx.tensor, dy.tensor,         param_views,
             grad_views, scratch.as<void>(), true,     seed,      step.as<int64_t>()};

  // The forward pass with tensor k at `moved` (null: every tensor at its value).
  auto outputs = [&](size_t k, const std::vector<float>* moved) {
    for (size_t j = 0; j < tensors.size(); ++j)
      upload(*be, tensors[j],
             j == k && moved ? *moved : std::vector<float>(values[j].begin(), values[j].end()));
    layer.forward(io);
    return download(*be, y.tensor);
  };

  // Probe every tensor along random unit directions first, to find the outputs at a kink.
  const std::vector<float> y0 = outputs(0, nullptr);
  std::vector<bool> at_kink(y0.size(), false);
  std::vector<std::vector<Probe>> probes(tensors.size());
  std::mt19937_64 rng(seed + 200);
  std::normal_distribution<double> normal;
  for (size_t k = 0; k < tensors.size(); ++k) {
    for (int r = 0; r < kDirections; ++r) {
      std::vector<double> d(values[k].size());
      double norm = 0, largest = 0;
      for (double& e : d) norm += (e = normal(rng)) * e;
      for (double& e : d) largest = std::max(largest, std::abs(e /= std::sqrt(norm)));
      Probe p;
      p.h = std::min(kStep, gaps[k] / (4 * largest));
      std::vector<float> plus(d.size()), minus(d.size());
      for (size_t i = 0; i < d.size(); ++i) {
        plus[i] = static_cast<float>(values[k][i] + p.h * d[i]);
        minus[i] = static_cast<float>(values[k][i] - p.h * d[i]);
        p.delta.push_back(static_cast<double>(plus[i]) - minus[i]);
      }
      p.y_plus = outputs(k, &plus);
      p.y_minus = outputs(k, &minus);
      for (size_t i = 0; i < y0.size(); ++i)
        if ((y0[i] == 0) != (p.y_plus[i] == 0) || (y0[i] == 0) != (p.y_minus[i] == 0))
          at_kink[i] = true;
      probes[k].push_back(std::move(p));
    }
  }
  std::vector<double> g = random_values(y0.size(), seed + 100);
  size_t kinks = 0;
  for (size_t i = 0; i < g.size(); ++i)
    if (at_kink[i]) g[i] = 0, ++kinks;
  INFO(kinks << " of " << g.size() << " outputs at a kink");
  CHECK(kinks * 10 <= g.size());  // more is a layer that jumps, not bad luck

  // The analytic gradients. NaN in dx and the grads first: a backward that accumulates
  // instead of overwriting fails.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto backward = [&](LayerIO& call) {
    if (call.dx.data) be->fill(call.dx.data, in.numel(), nan);
    for (const Tensor& t : call.grads) be->fill(t.data, t.numel(), nan);
    upload(*be, dy.tensor, std::vector<float>(g.begin(), g.end()));  // after dx: a view's dy is dx
    layer.backward(call);
  };
  outputs(0, nullptr);  // the forward state (argmax, mask) at the values
  backward(io);
  std::vector<std::vector<float>> analytic{download(*be, dx.tensor)};
  for (const Tensor& t : grad_views) analytic.push_back(download(*be, t));
  if (!view) {
    LayerIO first_layer = io;
    first_layer.dx.data = nullptr;
    backward(first_layer);
    for (size_t k = 0; k < grad_views.size(); ++k)
      CHECK(download(*be, grad_views[k]) == analytic[k + 1]);
    LayerIO frozen = io;
    frozen.grads = {};
    backward(frozen);
    CHECK(download(*be, dx.tensor) == analytic[0]);
  }

  std::vector<GradientError> errors;
  for (size_t k = 0; k < tensors.size(); ++k) {
    double norm = 0;
    for (float e : analytic[k]) norm += static_cast<double>(e) * e;
    // The typical directional derivative along a random unit direction: the floor of the
    // scale, so that a direction nearly orthogonal to the gradient does not turn roundoff
    // into a large relative error.
    const double typical = std::sqrt(norm / static_cast<double>(analytic[k].size()));
    GradientError worst{names[k]};
    for (const Probe& p : probes[k]) {
      double numeric = 0, expected = 0;
      for (size_t i = 0; i < g.size(); ++i)
        numeric += g[i] * (static_cast<double>(p.y_plus[i]) - p.y_minus[i]);
      for (size_t i = 0; i < p.delta.size(); ++i) expected += analytic[k][i] * p.delta[i];
      numeric /= 2 * p.h;
      expected /= 2 * p.h;
      const double scale = std::max({std::abs(numeric), std::abs(expected), typical});
      const double error = std::abs(numeric - expected) / scale;
      if (!(error <= worst.error)) worst = {names[k], error, numeric, expected};  // NaN sticks
    }
    errors.push_back(worst);
  }
  return errors;
}

// Builds the case's layer and checks every gradient within the tolerance.
inline void check_layer_gradients(const LayerGradientCase& c, uint64_t seed) {
  INFO("layer " << c.layer.dump() << " on input " << c.input.str());
  const auto layer = layer_from_json(c.layer, "gradient check", "layer");
  for (const GradientError& e : layer_gradient_errors(*layer, c.input, seed)) {
    INFO("tensor " << e.tensor << ": worst direction numeric " << e.numeric << ", analytic "
                   << e.analytic);
    CHECK(e.error <= layer_gradcheck::kTolerance);
  }
}

}  // namespace plinth::test
