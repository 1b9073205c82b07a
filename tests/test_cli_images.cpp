// The image-folder workflow through the plinth tool: a folder of PNG and JPEG files (grey
// and RGB, one corrupt) trains, packs into one file that trains identically, evaluates
// with F1, predicts on files by name with class names, and exports to ONNX.
#include <catch2/catch.hpp>

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "image_fixtures.h"
#include "robustness_fixtures.h"

namespace {

using Catch::Contains;
using plinth::test::run_cli;
using plinth::test::run_shell;

std::string last_line_with(const std::string& output, const std::string& start) {
  std::string found;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind(start, 0) == 0) found = line;
  return found;
}

TEST_CASE("cli images: folder -> train, pack -> the same training, eval, predict, export",
          "[cli][data][folder][packed]") {
  const std::string dir = plinth::test::image_folder("cli-images", 8);
  const std::string model = plinth::test::tiny_rgb_cnn_file(dir);
  const std::string common = " --device cpu --threads 2 --seed 2 --model " + model;

  const auto folder = run_cli("train --data " + dir + common + " --save " + dir + "/a.safetensors");
  INFO(folder.output);
  REQUIRE(folder.status == 0);
  CHECK_THAT(folder.output, Contains("loading " + dir + " (image folder)") &&
                                Contains("skipped 1 unreadable image") &&
                                Contains(dir + "/train/a_top/broken.png: corrupt PNG") &&
                                Contains("data: 18 training, 6 validation, 12 test images of "
                                         "3x16x16, 3 classes"));

  const auto strict = run_cli("train --strict --data " + dir + common);
  CHECK(strict.status == 1);
  CHECK_THAT(strict.output, Contains("error: " + dir + "/train/a_top/broken.png: corrupt PNG"));

  const auto pack = run_cli("data pack " + dir + " " + dir + "/set.pack --shape 3,16,16");
  INFO(pack.output);
  REQUIRE(pack.status == 0);
  CHECK_THAT(pack.output, Contains("24 training, 0 validation, 12 test images of 3x16x16, 3 "
                                   "classes"));
  const auto info = run_cli("data info " + dir + "/set.pack");
  CHECK_THAT(info.output, Contains("packed") && Contains("a_top b_middle c_bottom"));

  const auto packed =
      run_cli("train --data " + dir + "/set.pack" + common + " --save " + dir + "/b.safetensors");
  INFO(packed.output);
  REQUIRE(packed.status == 0);
  CHECK_THAT(packed.output, Contains("(packed)"));
  CHECK(last_line_with(packed.output, "Test accuracy") ==
        last_line_with(folder.output, "Test accuracy"));
  CHECK(plinth::test::checkpoint_weights(dir + "/b.safetensors") ==
        plinth::test::checkpoint_weights(dir + "/a.safetensors"));
  CHECK_THAT(packed.output, Contains("MB of pixels, resident on the device"));
  // --data-memory 0 streams the set a batch at a time: still the same run.
  const auto streamed = run_cli("train --data " + dir + "/set.pack --data-memory 0" + common +
                                " --save " + dir + "/c.safetensors");
  INFO(streamed.output);
  REQUIRE(streamed.status == 0);
  CHECK_THAT(streamed.output, Contains("more than --data-memory 0: streamed"));
  CHECK(plinth::test::checkpoint_weights(dir + "/c.safetensors") ==
        plinth::test::checkpoint_weights(dir + "/a.safetensors"));

  const std::string checkpoint = " --checkpoint " + dir + "/a.safetensors";
  const auto eval = run_cli("eval --device cpu --json --top-k 2 --data " + dir + checkpoint);
  INFO(eval.output);
  REQUIRE(eval.status == 0);
  const auto j = nlohmann::json::parse(eval.output.substr(eval.output.find('{')));
  CHECK(j["count"] == 12);
  CHECK(j["class_names"] == nlohmann::json{"a_top", "b_middle", "c_bottom"});
  CHECK(j["f1"].size() == 3);
  CHECK(j["macro"].contains("f1"));
  CHECK(j["weighted"]["support"] == 12);
  CHECK(j["top_k"] == 2);
  CHECK(j["top_k_accuracy"] >= j["accuracy"]);
  for (const auto& m : j["mistakes"])
    CHECK(m["file"].get<std::string>().starts_with(dir + "/test/"));
  const auto text = run_cli("eval --device cpu --data " + dir + "/set.pack" + checkpoint);
  CHECK_THAT(text.output, Contains("precision") && Contains("macro avg") &&
                              Contains("weighted avg") && Contains("b_middle"));

  const std::string png = dir + "/test/b_middle/0.png", jpg = dir + "/test/c_bottom/3.jpg";
  const auto predict = run_cli("predict --device cpu --json" + checkpoint + " " + png + " " + jpg);
  INFO(predict.output);
  REQUIRE(predict.status == 0);
  std::istringstream lines(predict.output.substr(predict.output.find('{')));
  std::string first, second;
  std::getline(lines, first);
  std::getline(lines, second);
  CHECK(nlohmann::json::parse(first)["image"] == png);
  CHECK(nlohmann::json::parse(second)["image"] == jpg);
  const std::string top_name = nlohmann::json::parse(first)["top"][0]["name"];
  CHECK((top_name == "a_top" || top_name == "b_middle" || top_name == "c_bottom"));
  const auto plain = run_cli("predict --device cpu" + checkpoint + " " + png);
  CHECK_THAT(plain.output, Contains(png + ": ") && Contains("_"));

  const std::string onnx_path = dir + "/model.onnx";
  const auto exported = run_cli("export" + checkpoint + " --onnx " + onnx_path);
  INFO(exported.output);
  REQUIRE(exported.status == 0);
  onnx::ModelProto proto;
  std::ifstream in(onnx_path, std::ios::binary);
  REQUIRE(proto.ParseFromIstream(&in));
  CHECK_NOTHROW(onnx::checker::check_model(proto));
  CHECK(proto.graph().input(0).name() == "image");
  CHECK(proto.graph().output(0).name() == "logits");
  CHECK(proto.graph().output(1).name() == "probabilities");
  CHECK(proto.opset_import(0).version() == 17);
}

TEST_CASE("cli images: onnxruntime computes what plinth predict does", "[cli][onnx]") {
  const std::string python = PLINTH_SOURCE_DIR "/.venv-onnx/bin/python";
  if (!std::filesystem::exists(python)) {
    WARN("SKIPPED: onnx and onnxruntime are not installed (bash scripts/setup_onnx.sh)");
    return;
  }
  const std::string dir = plinth::test::image_folder("cli-onnx", 8);
  // Images of the model's input size, so that Pillow and plinth see the same pixels.
  std::string images;
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 2; ++v) {
      const std::string path = dir + "/probe" + std::to_string(c) + std::to_string(v) + ".png";
      plinth::test::write_bytes(path,
                                plinth::test::encode_png(plinth::test::class_image(c, 3, 16, v)));
      images += " " + path;
    }
  const std::string model = plinth::test::tiny_rgb_cnn_file(dir);
  const std::string checkpoint = dir + "/m.safetensors";
  REQUIRE(
      run_cli("train --device cpu --data " + dir + " --model " + model + " --save " + checkpoint)
          .status == 0);
  REQUIRE(run_cli("export --checkpoint " + checkpoint + " --onnx " + dir + "/m.onnx").status == 0);
  const auto check = run_shell(python + " " PLINTH_SOURCE_DIR "/scripts/onnx_check.py --plinth " +
                               PLINTH_CLI_PATH + " --checkpoint " + checkpoint + " --onnx " + dir +
                               "/m.onnx" + images);
  INFO(check.output);
  CHECK(check.status == 0);
  CHECK_THAT(check.output, Contains("same class for every image: yes"));
}

TEST_CASE("cli images: a label outside the model's classes is an error naming the file",
          "[cli][data][folder]") {
  const std::string dir = plinth::test::image_folder("cli-labels", 2);
  std::string model = plinth::test::tiny_rgb_cnn_file(dir);
  std::string text;
  {
    std::ifstream in(model);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  text.replace(text.find("\"units\": 3"), 10, "\"units\": 2");
  std::ofstream(dir + "/two.json") << text;
  const auto r = run_cli("train --device cpu --data " + dir + " --model " + dir + "/two.json");
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Contains("error: " + dir +
                                "/train/c_bottom/0.png: label 2 is outside the model's 2 classes "
                                "(0 to 1)"));
}

}  // namespace
