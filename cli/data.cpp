// plinth data: pack a data set into one file, or describe one.
#include <cstdio>
#include <cstring>

#include "cli/commands.h"
#include "cli/common.h"
#include "datasets/packed.h"
#include "engine/error.h"

namespace plinth::cli {

namespace {

// --shape C,H,W, or the first image's for an image folder (other formats carry theirs).
ImageFolderOptions pack_shape(const Args& a, const std::string& source) {
  ImageFolderOptions shape;
  if (a.has("shape")) {
    const std::vector<std::string> dims = a.list("shape");
    int* fields[3] = {&shape.channels, &shape.height, &shape.width};
    if (dims.size() != 3) fail("--shape: expected C,H,W (e.g. 3,32,32), got '{}'", a.str("shape"));
    for (int i = 0; i < 3; ++i) {
      size_t used = 0;
      try {
        *fields[i] = std::stoi(dims[i], &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != dims[i].size() || *fields[i] < 1 || *fields[i] > 8192)
        fail("--shape: expected C,H,W with C 1 or 3 and H, W in 1 to 8192, got '{}'",
             a.str("shape"));
    }
    if (shape.channels != 1 && shape.channels != 3)
      fail("--shape: images have 1 (grey) or 3 (RGB) channels, got {}", shape.channels);
  } else if (is_image_folder(source)) {
    shape = first_image_shape(source);
  }
  shape.strict = a.on("strict");
  return shape;
}

Args pack_args() {
  Args a("data pack",
         "Decode a data set once into a packed file that training memory-maps: SOURCE is an image "
         "folder, CIFAR-10 batches or an IDX folder; OUT the file to write.");
  a.positional("SOURCE", "the data set to pack")
      .positional("OUT", "the packed file")
      .option("shape", "C,H,W",
              "fit an image folder's images to this shape (default: its first image's)")
      .flag("strict", "an unreadable image is an error (default: skipped and listed)");
  return a;
}

Args info_args() {
  Args a("data info", "Describe a data set: its format, shape, classes and parts.");
  a.positional("PATH", "a packed file, an image folder, CIFAR-10 batches or an IDX folder");
  return a;
}

int pack(int argc, char** argv) {
  Args a = pack_args();
  if (!a.parse(argc, argv)) return 0;
  if (a.positionals().size() != 2) fail("plinth data pack: expected SOURCE and OUT");
  const std::string& source_path = a.positionals()[0];
  const std::string& out = a.positionals()[1];
  const ImageFolderOptions shape = pack_shape(a, source_path);
  const DataSource source(source_path, shape);
  Dataset parts[3];
  const Split splits[3] = {Split::train, Split::val, Split::test};
  for (int i = 0; i < 3; ++i) {
    std::vector<std::string> skipped;
    parts[i] = source.load(splits[i], &skipped);
    if (!skipped.empty()) {
      notice(fmt::format("{}: skipped {} unreadable image{} (--strict makes them errors):",
                         parts[i].name, skipped.size(), skipped.size() == 1 ? "" : "s"));
      for (const std::string& problem : skipped) notice("  " + problem);
    }
  }
  write_packed(out, parts[0], parts[1], parts[2]);
  std::printf(
      "packed %s (%s) into %s: %d training, %d validation, %d test images of %dx%dx%d, %d "
      "classes\n",
      source_path.c_str(), data_format_name(source.format()), out.c_str(), parts[0].count,
      parts[1].count, parts[2].count, parts[0].channels, parts[0].height, parts[0].width,
      parts[0].classes);
  return 0;
}

int info(int argc, char** argv) {
  Args a = info_args();
  if (!a.parse(argc, argv)) return 0;
  if (a.positionals().size() != 1) fail("plinth data info: expected one PATH");
  const std::string& path = a.positionals()[0];
  const DataSource source(path,
                          is_image_folder(path) ? first_image_shape(path) : ImageFolderOptions{});
  std::printf("%s: %s\n", path.c_str(), data_format_name(source.format()));
  for (Split split : {Split::train, Split::val, Split::test}) {
    const Dataset d = source.load(split);
    if (d.count == 0 && split == Split::val) continue;
    std::printf("  %-5s %d images of %dx%dx%d\n",
                split == Split::train ? "train"
                : split == Split::val ? "val"
                                      : "test",
                d.count, d.channels, d.height, d.width);
    if (split != Split::train) continue;
    std::printf("  classes %d:", d.classes);
    for (const std::string& name : d.class_names) std::printf(" %s", name.c_str());
    std::printf("\n");
  }
  return 0;
}

}  // namespace

int data_command(int argc, char** argv) {
  const std::string usage = pack_args().help() + "\n" + info_args().help();
  if (argc < 1 || !std::strcmp(argv[0], "--help") || !std::strcmp(argv[0], "-h")) {
    std::fputs(usage.c_str(), argc < 1 ? stderr : stdout);
    return argc < 1 ? 2 : 0;
  }
  if (!std::strcmp(argv[0], "pack")) return pack(argc - 1, argv + 1);
  if (!std::strcmp(argv[0], "info")) return info(argc - 1, argv + 1);
  std::fprintf(stderr, "plinth data: unknown subcommand '%s'\n%s", argv[0], usage.c_str());
  return 2;
}

}  // namespace plinth::cli
