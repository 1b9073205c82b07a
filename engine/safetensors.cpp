#include "engine/safetensors.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <set>
#include <tuple>

#include <nlohmann/json.hpp>

#include "engine/atomic_file.h"
#include "engine/error.h"
#include "engine/user_text.h"

namespace plinth {

// Tensor bytes are copied as they lie in memory, and the format is little-endian.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes little-endian");

namespace {

using Json = nlohmann::json;

struct DtypeInfo {
  SafetensorsDtype dtype;
  std::string_view name;
  size_t size;
};
constexpr std::array<DtypeInfo, 15> kDtypes{{
    {SafetensorsDtype::BOOL, "BOOL", 1},
    {SafetensorsDtype::U8, "U8", 1},
    {SafetensorsDtype::I8, "I8", 1},
    {SafetensorsDtype::U16, "U16", 2},
    {SafetensorsDtype::I16, "I16", 2},
    {SafetensorsDtype::U32, "U32", 4},
    {SafetensorsDtype::I32, "I32", 4},
    {SafetensorsDtype::U64, "U64", 8},
    {SafetensorsDtype::I64, "I64", 8},
    {SafetensorsDtype::F16, "F16", 2},
    {SafetensorsDtype::BF16, "BF16", 2},
    {SafetensorsDtype::F32, "F32", 4},
    {SafetensorsDtype::F64, "F64", 8},
    {SafetensorsDtype::F8_E4M3, "F8_E4M3", 1},
    {SafetensorsDtype::F8_E5M2, "F8_E5M2", 1},
}};

const DtypeInfo& info(SafetensorsDtype dtype) { return kDtypes[static_cast<size_t>(dtype)]; }

// A name from an untrusted file, safe to put in a one-line message: quoted as JSON would,
// control characters escaped, long names cut (engine/user_text.h).
std::string quoted_name(const std::string& name) { return plinth::quoted_input(name, 80, '"'); }

// The byte size of a tensor, or false if computing it overflows. Dimensions are >= 0.
bool byte_count(const std::vector<int64_t>& shape, SafetensorsDtype dtype, uint64_t& bytes) {
  bytes = info(dtype).size;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(bytes, static_cast<uint64_t>(d), &bytes)) return false;
  return true;
}

template <typename T>
NamedTensorData make(std::string name, SafetensorsDtype dtype, std::vector<int64_t> shape,
                     std::span<const T> values) {
  const auto* first = reinterpret_cast<const std::byte*>(values.data());
  return {std::move(name), dtype, std::move(shape), {first, first + values.size_bytes()}};
}

template <typename T>
std::vector<T> values_of(const SafetensorsTensor& t) {
  std::vector<T> out(t.bytes.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), t.bytes.data(), t.bytes.size());
  return out;
}

// Parses the header as nlohmann does, but also rejects duplicate keys (nlohmann would keep
// the last one silently) and nesting deeper than a valid header needs, before it is built.
Json parse_header(std::string_view text) {
  std::vector<std::set<std::string>> keys_per_open_object;
  auto check = [&](int depth, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        // Valid headers nest three levels: {name: {"shape": [..]}}.
        if (depth >= 3) throw Error("header nests deeper than a safetensors header can");
        if (event == Json::parse_event_t::array_start) break;
        keys_per_open_object.emplace_back();
        break;
      case Json::parse_event_t::object_end:
        keys_per_open_object.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!keys_per_open_object.back().insert(parsed.get<std::string>()).second)
          throw Error("header has the key " + quoted_name(parsed.get<std::string>()) + " twice");
        break;
      default:
        break;
    }
    return true;
  };
  return Json::parse(text.begin(), text.end(), check);
}

// nlohmann's message without its "[json.exception.parse_error.101] " prefix, and with the
// raw bytes it quotes from the input made printable.
std::string json_error_text(const Json::exception& e) {
  std::string text = e.what();
  if (const size_t end = text.find("] "); text.rfind("[json.exception", 0) == 0 && end != text.npos)
    text.erase(0, end + 2);
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  return text;
}

// Throws "<file>: safetensors: <problem>".
struct Complaint {
  const std::string& source;
  template <typename... Args>
  [[noreturn]] void operator()(fmt::format_string<Args...> format, Args&&... args) const {
    fail("{}: safetensors: {}", source, fmt::format(format, std::forward<Args>(args)...));
  }
};

uint64_t read_u64_le(const std::string& bytes) {
  uint64_t v = 0;
  std::memcpy(&v, bytes.data(), 8);
  return v;
}

}  // namespace

size_t dtype_size(SafetensorsDtype dtype) { return info(dtype).size; }
std::string_view dtype_name(SafetensorsDtype dtype) { return info(dtype).name; }

NamedTensorData NamedTensorData::f32(std::string name, std::vector<int64_t> shape,
                                     std::span<const float> values) {
  return make(std::move(name), SafetensorsDtype::F32, std::move(shape), values);
}
NamedTensorData NamedTensorData::i64(std::string name, std::vector<int64_t> shape,
                                     std::span<const int64_t> values) {
  return make(std::move(name), SafetensorsDtype::I64, std::move(shape), values);
}
NamedTensorData NamedTensorData::u8(std::string name, std::vector<int64_t> shape,
                                    std::span<const uint8_t> values) {
  return make(std::move(name), SafetensorsDtype::U8, std::move(shape), values);
}

std::string encode_safetensors(const std::vector<NamedTensorData>& tensors,
                               const std::map<std::string, std::string>& metadata) {
  // Ordered so the header reads in storage order, with the field order the reference
  // implementation writes.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const NamedTensorData& t : tensors) {
    const std::string name = quoted_name(t.name);
    if (t.name == "__metadata__") fail("safetensors: a tensor cannot be named \"__metadata__\"");
    if (header.contains(t.name)) fail("safetensors: two tensors are named {}", name);
    if (t.shape.size() > kSafetensorsMaxRank)
      fail("safetensors: tensor {} has rank {}, more than {}", name, t.shape.size(),
           kSafetensorsMaxRank);
    if (std::any_of(t.shape.begin(), t.shape.end(), [](int64_t d) { return d < 0; }))
      fail("safetensors: tensor {} has a negative dimension", name);
    uint64_t bytes = 0;
    if (!byte_count(t.shape, t.dtype, bytes) || bytes != t.bytes.size())
      fail("safetensors: tensor {} has {} bytes, but its shape and dtype {} need {}", name,
           t.bytes.size(), dtype_name(t.dtype), bytes);
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }

  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception&) {
    fail("safetensors: a tensor name or metadata string is not valid UTF-8");
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned

  std::string out;
  out.reserve(8 + text.size() + offset);
  const uint64_t header_size = text.size();
  out.append(reinterpret_cast<const char*>(&header_size), 8);
  out += text;
  for (const NamedTensorData& t : tensors)
    out.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
  return out;
}

void save_safetensors(const std::string& path, const std::vector<NamedTensorData>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::string bytes;
  try {
    bytes = encode_safetensors(tensors, metadata);
  } catch (const Error& e) {
    fail("{}: {}", path, e.what());
  }
  write_file_atomically(path, bytes);
}

SafetensorsFile load_safetensors(const std::string& path) {
  return parse_safetensors(read_file(path, kSafetensorsMaxFileBytes), path);
}

SafetensorsFile parse_safetensors(std::string bytes, const std::string& name_for_errors) {
  const Complaint bad{name_for_errors};
  if (bytes.size() < 8)
    bad("file is {} bytes, too short to hold the 8-byte header length", bytes.size());
  const uint64_t header_size = read_u64_le(bytes);
  if (header_size > kSafetensorsMaxHeaderBytes)
    bad("header length {} is over the limit of {} bytes", header_size, kSafetensorsMaxHeaderBytes);
  if (header_size > bytes.size() - 8)
    bad("header length {} runs past the end of the {}-byte file", header_size, bytes.size());
  const uint64_t data_size = bytes.size() - 8 - header_size;

  Json header;
  try {
    header = parse_header(std::string_view(bytes).substr(8, header_size));
  } catch (const Json::exception& e) {
    bad("header is not valid JSON: {}", json_error_text(e));
  } catch (const Error& e) {
    bad("{}", e.what());
  }
  if (!header.is_object()) bad("header is not a JSON object");

  SafetensorsFile file;
  std::vector<std::tuple<uint64_t, uint64_t, std::string>> extents;
  for (const auto& [key, value] : header.items()) {
    const std::string name = quoted_name(key);
    if (key == "__metadata__") {
      if (!value.is_object()) bad("__metadata__ is not an object");
      for (const auto& [mkey, mvalue] : value.items()) {
        if (!mvalue.is_string()) bad("__metadata__ value {} is not a string", quoted_name(mkey));
        file.metadata_[mkey] = mvalue.get<std::string>();
      }
      continue;
    }
    if (!value.is_object()) bad("tensor {}: entry is not an object", name);

    const auto dtype_it = value.find("dtype");
    if (dtype_it == value.end() || !dtype_it->is_string())
      bad("tensor {}: dtype is missing or not a string", name);
    const auto known = std::find_if(kDtypes.begin(), kDtypes.end(), [&](const DtypeInfo& d) {
      return d.name == dtype_it->get_ref<const std::string&>();
    });
    if (known == kDtypes.end()) bad("tensor {}: unknown dtype {}", name, dtype_it->dump());

    const auto shape_it = value.find("shape");
    if (shape_it == value.end() || !shape_it->is_array())
      bad("tensor {}: shape is missing or not an array", name);
    if (shape_it->size() > kSafetensorsMaxRank)
      bad("tensor {}: rank {} is more than {}", name, shape_it->size(), kSafetensorsMaxRank);
    std::vector<int64_t> shape;
    for (const Json& d : *shape_it) {
      // nlohmann stores non-negative integers as unsigned; anything else is not a dimension.
      if (!d.is_number_unsigned() ||
          d.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        bad("tensor {}: shape holds {}, not a non-negative integer", name, d.dump());
      shape.push_back(d.get<int64_t>());
    }

    const auto offsets_it = value.find("data_offsets");
    if (offsets_it == value.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
        !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned())
      bad("tensor {}: data_offsets is not a pair of non-negative integers", name);
    const uint64_t begin = (*offsets_it)[0].get<uint64_t>();
    const uint64_t end = (*offsets_it)[1].get<uint64_t>();
    if (begin > end || end > data_size)
      bad("tensor {}: data_offsets [{}, {}] do not lie within the {}-byte data section", name,
          begin, end, data_size);

    uint64_t expected = 0;
    if (!byte_count(shape, known->dtype, expected))
      bad("tensor {}: shape x dtype size overflows 64 bits", name);
    if (expected != end - begin)
      bad("tensor {}: shape and dtype {} need {} bytes, but data_offsets span {}", name,
          known->name, expected, end - begin);

    file.entries_[key] = {known->dtype, std::move(shape), begin, end};
    extents.emplace_back(begin, end, key);
  }

  // The spec demands the tensors tile the data section: no gaps, no overlaps, nothing after.
  std::sort(extents.begin(), extents.end());
  uint64_t covered = 0;
  for (const auto& [begin, end, key] : extents) {
    if (begin != covered)
      bad("tensor {} starts at byte {}, but the data before it ends at byte {} ({})",
          quoted_name(key), begin, covered, begin > covered ? "a gap" : "an overlap");
    covered = end;
    file.names_.push_back(key);
  }
  if (covered != data_size)
    bad("tensors cover {} bytes, but the data section is {} bytes", covered, data_size);

  file.source_ = name_for_errors;
  file.data_start_ = 8 + header_size;
  file.bytes_ = std::move(bytes);
  return file;
}

SafetensorsTensor SafetensorsFile::tensor(const std::string& name) const {
  const auto it = entries_.find(name);
  if (it == entries_.end()) Complaint{source_}("no tensor named {}", quoted_name(name));
  const Entry& e = it->second;
  const auto* data = reinterpret_cast<const std::byte*>(bytes_.data()) + data_start_;
  return {e.dtype, e.shape, {data + e.begin, data + e.end}};
}

std::vector<float> SafetensorsFile::float_tensor(const std::string& name) const {
  const SafetensorsTensor t = tensor(name);
  if (t.dtype != SafetensorsDtype::F32)
    Complaint{source_}("tensor {} is {}, expected F32", quoted_name(name), dtype_name(t.dtype));
  return values_of<float>(t);
}

std::vector<int64_t> SafetensorsFile::int64_tensor(const std::string& name) const {
  const SafetensorsTensor t = tensor(name);
  if (t.dtype != SafetensorsDtype::I64)
    Complaint{source_}("tensor {} is {}, expected I64", quoted_name(name), dtype_name(t.dtype));
  return values_of<int64_t>(t);
}

}  // namespace plinth
