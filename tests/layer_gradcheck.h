// A gradient checker for one Layer (after Caffe's GradientChecker): the layer, built from
// its model-file object, runs forward and backward on the CPU backend with random inputs
// and parameters, and each input gradient and every parameter gradient must match finite
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
  nlohmann::json layer;       // its model-file object
  std::vector<Shape> inputs;  // batch included, one per input
  bool training = true;       // false: the evaluation passes (BatchNorm's running statistics)
};

// The worst direction found for one tensor.
struct GradientError {
  std::string tensor;  // "input" ("input 2" of several) or a parameter's suffix
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

// Runs the layer forward and backward and returns the worst error of each input gradient
// and of every parameter gradient. CHECKs on the way that backward overwrites its outputs,
// gives the same parameter gradients without any dx (a first layer), the same dx without
// parameter gradients (a frozen layer) and, with several inputs, the same dx of each input
// when it is the only one needed. Buffers (running statistics) start at random positive
// values, restored before every forward pass; training false runs the evaluation passes.
inline std::vector<GradientError> layer_gradient_errors(Layer& layer, InputShapes in, uint64_t seed,
                                                        bool training = true) {
  using namespace layer_gradcheck;
  auto be = make_cpu_backend(1);
  const Shape out = layer.output_shape(in);
  const std::vector<ParamSpec> specs = layer.param_specs(in);
  const std::vector<BufferSpec> buffer_specs = layer.buffer_specs(in);
  const bool view = layer.reshape_only();
  const size_t inputs = in.size();

  // values[0, inputs) are the inputs, then the parameters (biases random too, so that
  // they matter).
  std::vector<std::string> names;
  std::vector<std::vector<double>> values;
  std::vector<double> gaps;
  for (size_t k = 0; k < inputs; ++k) {
    names.push_back(inputs == 1 ? "input" : "input " + std::to_string(k + 1));
    values.push_back(distinct_values(in[k].numel(), seed + 50 * k));
    gaps.push_back(2.0 / static_cast<double>(in[k].numel()));  // of distinct_values
  }
  for (size_t k = 0; k < specs.size(); ++k) {
    names.push_back(specs[k].suffix);
    values.push_back(random_values(specs[k].shape.numel(), seed + 1 + k, -0.5, 0.5));
    gaps.push_back(std::numeric_limits<double>::infinity());  // no order to keep
  }

  std::vector<DeviceTensor> xs, dxs, params, grads, buffers;
  std::vector<Tensor> tensors, x_views, dx_views, param_views, grad_views, buffer_views;
  for (const Shape& shape : in) {
    xs.push_back(device_tensor(*be, shape));
    dxs.push_back(device_tensor(*be, shape));
    x_views.push_back(xs.back().tensor);
    dx_views.push_back(dxs.back().tensor);
    tensors.push_back(xs.back().tensor);
  }
  DeviceTensor y = view ? DeviceTensor{{}, {out, xs[0].tensor.data}} : device_tensor(*be, out);
  DeviceTensor dy = view ? DeviceTensor{{}, {out, dxs[0].tensor.data}} : device_tensor(*be, out);
  for (const ParamSpec& s : specs) {
    params.push_back(device_tensor(*be, s.shape));
    grads.push_back(device_tensor(*be, s.shape));
    param_views.push_back(params.back().tensor);
    grad_views.push_back(grads.back().tensor);
    tensors.push_back(params.back().tensor);
  }
  std::vector<std::vector<float>> buffer_values;
  for (size_t k = 0; k < buffer_specs.size(); ++k) {
    // Room for an i64 buffer too: two floats per element, zero.
    const BufferSpec& b = buffer_specs[k];
    const bool i64 = b.type == BufferSpec::Type::i64;
    const std::vector<double> v = random_values(b.shape.numel(), seed + 300 + k, 0.5, 1.5);
    buffer_values.push_back(i64 ? std::vector<float>(2 * b.shape.numel(), 0.0f)
                                : std::vector<float>(v.begin(), v.end()));
    buffers.push_back(device_tensor(*be, {static_cast<int>(buffer_values.back().size())}));
    buffer_views.push_back({b.shape, buffers.back().tensor.data});
  }
  DeviceBuffer scratch(*be, layer.scratch_bytes(in)), step(*be, sizeof(int64_t));
  const int64_t step_value = 3;
  be->upload(step.as<int64_t>(), &step_value, sizeof step_value);
  layer.prepare(*be, in);
  LayerIO io{.backend = *be,
             .xs = x_views,
             .y = y.tensor,
             .dxs = dx_views,
             .dy = dy.tensor,
             .params = param_views,
             .grads = grad_views,
             .buffers = buffer_views,
             .scratch = scratch.as<void>(),
             .training = training,
             .seed = seed,
             .step = step.as<int64_t>()};

  // The forward pass with tensor k at `moved` (null: every tensor at its value).
  auto outputs = [&](size_t k, const std::vector<float>* moved) {
    for (size_t j = 0; j < tensors.size(); ++j)
      upload(*be, tensors[j],
             j == k && moved ? *moved : std::vector<float>(values[j].begin(), values[j].end()));
    for (size_t j = 0; j < buffers.size(); ++j) upload(*be, buffers[j].tensor, buffer_values[j]);
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

  // The analytic gradients. NaN in the dxs and the grads first: a backward that
  // accumulates instead of overwriting fails.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto backward = [&](LayerIO& call) {
    for (const Tensor& dx : call.dxs)
      if (dx.data) be->fill(dx.data, dx.numel(), nan);
    for (const Tensor& t : call.grads) be->fill(t.data, t.numel(), nan);
    upload(*be, dy.tensor, std::vector<float>(g.begin(), g.end()));  // after dx: a view's dy is dx
    layer.backward(call);
  };
  outputs(0, nullptr);  // the forward state (argmax, mask, statistics) at the values
  backward(io);
  std::vector<std::vector<float>> analytic;
  for (const Tensor& dx : dx_views) analytic.push_back(download(*be, dx));
  for (const Tensor& t : grad_views) analytic.push_back(download(*be, t));
  if (!view) {
    std::vector<Tensor> no_dx = dx_views;
    for (Tensor& t : no_dx) t.data = nullptr;
    LayerIO first_layer = io;
    first_layer.dxs = no_dx;
    backward(first_layer);
    for (size_t k = 0; k < grad_views.size(); ++k)
      CHECK(download(*be, grad_views[k]) == analytic[inputs + k]);
    LayerIO frozen = io;
    frozen.grads = {};
    backward(frozen);
    for (size_t k = 0; k < inputs; ++k) CHECK(download(*be, dx_views[k]) == analytic[k]);
    for (size_t k = 0; inputs > 1 && k < inputs; ++k) {
      std::vector<Tensor> only_k = no_dx;
      only_k[k].data = dx_views[k].data;
      LayerIO one_input = io;
      one_input.dxs = only_k;
      backward(one_input);
      INFO("only the gradient of input " << k + 1 << " needed");
      CHECK(download(*be, dx_views[k]) == analytic[k]);
    }
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
  std::string shapes;
  for (const Shape& s : c.inputs) shapes += (shapes.empty() ? "" : ", ") + s.str();
  INFO("layer " << c.layer.dump() << " on inputs " << shapes << (c.training ? "" : ", evaluation"));
  const auto layer = layer_from_json(c.layer, "gradient check", "layer");
  for (const GradientError& e : layer_gradient_errors(*layer, c.inputs, seed, c.training)) {
    INFO("tensor " << e.tensor << ": worst direction numeric " << e.numeric << ", analytic "
                   << e.analytic);
    CHECK(e.error <= layer_gradcheck::kTolerance);
  }
}

}  // namespace plinth::test
