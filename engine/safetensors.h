// The safetensors format (https://github.com/huggingface/safetensors), written and read by
// hand so checkpoints move freely between plinth, PyTorch, NumPy and JAX:
//
//   8 bytes   N, the header length, unsigned little-endian
//   N bytes   UTF-8 JSON object, padded with spaces:
//             {"__metadata__": {string: string},            (optional)
//              name: {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
//   the rest  the tensors' bytes, row-major, little-endian; offsets count from here
//
// A safetensors file holds no code, so loading one from anywhere is safe as long as the
// reader trusts nothing: parse_safetensors checks every field, every size product for
// overflow, and that the tensors tile the data section exactly, before handing out a byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace plinth {

enum class SafetensorsDtype {
  BOOL,
  U8,
  I8,
  U16,
  I16,
  U32,
  I32,
  U64,
  I64,
  F16,
  BF16,
  F32,
  F64,
  F8_E4M3,
  F8_E5M2
};
size_t dtype_size(SafetensorsDtype dtype);
std::string_view dtype_name(SafetensorsDtype dtype);  // as the header spells it: "F32"

inline constexpr size_t kSafetensorsMaxRank = 8;
inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;  // the reference limit
inline constexpr size_t kSafetensorsMaxFileBytes = size_t{16} << 30;

// One tensor to write. The factories copy the values, so the caller's buffer may go away.
struct NamedTensorData {
  std::string name;
  SafetensorsDtype dtype = SafetensorsDtype::F32;
  std::vector<int64_t> shape;
  std::vector<std::byte> bytes;  // row-major, little-endian

  static NamedTensorData f32(std::string name, std::vector<int64_t> shape,
                             std::span<const float> values);
  static NamedTensorData i64(std::string name, std::vector<int64_t> shape,
                             std::span<const int64_t> values);
  static NamedTensorData u8(std::string name, std::vector<int64_t> shape,
                            std::span<const uint8_t> values);
};

// The file's bytes: tensors stored in the given order, header padded to a multiple of 8.
// Throws Error for duplicate names, a tensor named "__metadata__", a negative dimension,
// bytes that do not match shape x dtype, or names that are not valid UTF-8.
std::string encode_safetensors(const std::vector<NamedTensorData>& tensors,
                               const std::map<std::string, std::string>& metadata = {});
void save_safetensors(const std::string& path, const std::vector<NamedTensorData>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

struct SafetensorsTensor {
  SafetensorsDtype dtype;
  std::vector<int64_t> shape;
  std::span<const std::byte> bytes;  // points into the SafetensorsFile; valid while it lives
};

// A parsed, validated file; holds its bytes.
class SafetensorsFile {
 public:
  const std::vector<std::string>& names() const { return names_; }  // in storage order
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  SafetensorsTensor tensor(const std::string& name) const;
  // Copies of the values; throw Error if the tensor is missing or has another dtype.
  std::vector<float> float_tensor(const std::string& name) const;
  std::vector<int64_t> int64_tensor(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  struct Entry {
    SafetensorsDtype dtype;
    std::vector<int64_t> shape;
    uint64_t begin, end;  // within the data section
  };
  friend SafetensorsFile parse_safetensors(std::string bytes, const std::string& name_for_errors);

  std::string source_;  // names the file in errors
  std::string bytes_;
  size_t data_start_ = 0;
  std::vector<std::string> names_;
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

// Errors read "<path>: safetensors: <problem>". Duplicate names anywhere in the header are
// rejected, as are files over kSafetensorsMaxFileBytes. Unknown fields inside a tensor's
// entry are ignored, so files from newer writers that add fields still load.
SafetensorsFile load_safetensors(const std::string& path);
SafetensorsFile parse_safetensors(std::string bytes, const std::string& name_for_errors);

}  // namespace plinth
