// The content hash of an artifact: what its values are, not how the file is laid out or
// when it was written. Provenance attributes, HDF5 object addresses and timestamps do
// not count, so an artifact rewritten with the same values hashes the same, and the
// cache keys of its dependents stay valid.
#include <xxhash.h>

#include <cstdio>
#include <memory>

#include "sluice/engine/artifacts.hpp"
#include "sluice/engine/hdf5_codec.hpp"

namespace sluice {
namespace {

struct StateFree {
  void operator()(XXH3_state_t* s) const { XXH3_freeState(s); }
};

class Hasher {
 public:
  Hasher() : state_(XXH3_createState()) { XXH3_64bits_reset(state_.get()); }
  void bytes(const void* p, std::size_t n) { XXH3_64bits_update(state_.get(), p, n); }
  void tag(char c) { bytes(&c, 1); }
  void u64(std::uint64_t v) { bytes(&v, sizeof v); }
  void text(const std::string& s) {
    u64(s.size());
    bytes(s.data(), s.size());
  }
  std::string hex() {
    char out[24];
    std::snprintf(out, sizeof out, "%016llx",
                  static_cast<unsigned long long>(XXH3_64bits_digest(state_.get())));
    return "xxh3:" + std::string(out);
  }

  void array_header(DType dtype, const std::vector<std::uint64_t>& shape) {
    tag('A');
    tag(static_cast<char>(dtype));
    u64(shape.size());
    for (auto d : shape) u64(d);
  }

  void value(const Value& v) {
    tag(static_cast<char>(v.type()));
    switch (v.type()) {
      case Value::Type::kNull:
        break;
      case Value::Type::kBool:
        tag(v.get<bool>() ? 1 : 0);
        break;
      case Value::Type::kInt:
        u64(static_cast<std::uint64_t>(v.get<std::int64_t>()));
        break;
      case Value::Type::kDouble: {
        const double d = v.get<double>();
        bytes(&d, sizeof d);
        break;
      }
      case Value::Type::kString:
        text(v.get<std::string>());
        break;
      case Value::Type::kArray: {
        const NdArray& a = v.get<NdArray>();
        array_header(a.dtype(), a.shape());
        bytes(a.data(), a.nbytes());
        break;
      }
      case Value::Type::kList:
        u64(v.get<List>().size());
        for (const Value& e : v.get<List>()) value(e);
        break;
      case Value::Type::kMap:
        u64(v.get<Map>().size());
        for (const auto& [k, e] : v.get<Map>()) {
          text(k);
          value(e);
        }
        break;
    }
  }

 private:
  std::unique_ptr<XXH3_state_t, StateFree> state_;
};

// One top-level key: an array is hashed as artifact_content_hash streams it (its header
// and data, no type tag); anything else as a value.
void hash_entry(Hasher& h, const std::string& key, const Value& v) {
  h.text(key);
  if (const NdArray* a = v.get_if<NdArray>()) {
    h.array_header(a->dtype(), a->shape());
    h.bytes(a->data(), a->nbytes());
    return;
  }
  h.value(v);
}

}  // namespace

std::string values_content_hash(const Map& values) {
  Hasher h;
  for (const auto& [key, value] : values) hash_entry(h, key, value);  // byte order, as read
  return h.hex();
}

std::string value_content_hash(const std::string& key, const Value& value) {
  Hasher h;
  hash_entry(h, key, value);
  return h.hex();
}

Expected<std::string> artifact_content_hash(const std::string& path) {
  auto reader = ArtifactReader::open(path);
  if (!reader) return tl::unexpected(reader.error());
  return artifact_content_hash(*reader);
}

Expected<std::string> artifact_content_hash(const ArtifactReader& reader) {
  Hasher h;
  for (const std::string& key : reader.keys()) {  // byte order: stable
    h.text(key);
    auto info = reader.info(key);
    if (!info) return tl::unexpected(info.error());
    if (info->type == Value::Type::kArray) {
      // Streamed in blocks: a 1 GiB array is hashed at read speed without holding it.
      h.array_header(info->dtype, info->shape);
      auto r = reader.read_array_blocks(key, 8u << 20, [&](std::uint64_t, const NdArray& block) {
        h.bytes(block.data(), block.nbytes());
        return Expected<void>{};
      });
      if (!r) return tl::unexpected(r.error());
      continue;
    }
    auto value = reader.get(key);
    if (!value) return tl::unexpected(value.error());
    h.value(*value);
  }
  return h.hex();
}

}  // namespace sluice
