#include "sluice/engine/artifacts.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>

#include <xxhash.h>

#include "artifacts/h5_handle.hpp"
#include "sluice/engine/hdf5_codec.hpp"
#include "sluice/task_spec.hpp"

namespace sluice {
namespace {

std::string iso_time(std::int64_t epoch_us) {
  if (epoch_us <= 0) return "";
  std::time_t t = static_cast<std::time_t>(epoch_us / 1000000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  char out[64];
  std::snprintf(out, sizeof(out), "%s.%06lldZ", buf, static_cast<long long>(epoch_us % 1000000));
  return out;
}

// Replaces root attribute `name` with a variable-length UTF-8 string.
bool set_string_attr(hid_t file, const char* name, const std::string& value) {
  if (H5Aexists(file, name) > 0) H5Adelete(file, name);
  h5::Datatype type(H5Tcopy(H5T_C_S1));
  if (!type || H5Tset_size(type.get(), H5T_VARIABLE) < 0 ||
      H5Tset_cset(type.get(), H5T_CSET_UTF8) < 0)
    return false;
  h5::Dataspace space(H5Screate(H5S_SCALAR));
  h5::Attribute attr(H5Acreate2(file, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
  const char* p = value.c_str();
  return attr && H5Awrite(attr.get(), type.get(), &p) >= 0;
}

bool set_int_attr(hid_t file, const char* name, std::int64_t value) {
  if (H5Aexists(file, name) > 0) H5Adelete(file, name);
  h5::Dataspace space(H5Screate(H5S_SCALAR));
  h5::Attribute attr(H5Acreate2(file, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT));
  return attr && H5Awrite(attr.get(), H5T_NATIVE_INT64, &value) >= 0;
}

// The provenance attributes, in the order they are written.
std::vector<std::pair<const char*, Value>> provenance_attributes(const Provenance& p) {
  std::string inputs;
  for (const auto& [in_path, sum] : p.inputs) inputs += sum + " " + in_path + "\n";
  std::vector<std::pair<const char*, Value>> a;
  a.reserve(10);
  a.emplace_back("run_id", Value(p.run_id));
  a.emplace_back("workflow", Value(p.workflow));
  a.emplace_back("task", Value(p.task));
  a.emplace_back("attempt", Value(static_cast<std::int64_t>(p.attempt)));
  a.emplace_back("host", Value(p.host));
  a.emplace_back("started", Value(iso_time(p.started_us)));
  a.emplace_back("ended", Value(iso_time(p.ended_us)));
  a.emplace_back("exit_status", Value(static_cast<std::int64_t>(p.exit_status)));
  a.emplace_back("command", Value(p.command));
  a.emplace_back("inputs", Value(std::move(inputs)));
  return a;
}

}  // namespace

std::optional<std::string> scalar_text(const Value& v) {
  switch (v.type()) {
    case Value::Type::kBool:
      return v.get<bool>() ? "true" : "false";
    case Value::Type::kInt:
      return std::to_string(v.get<std::int64_t>());
    case Value::Type::kDouble: {
      char buf[64];
      auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v.get<double>());
      return std::string(buf, ec == std::errc() ? end : buf);
    }
    case Value::Type::kString:
      return v.get<std::string>();
    default:
      return std::nullopt;
  }
}

std::string artifact_path(const std::string& attempt_dir) {
  return attempt_dir + "/" + std::string(kArtifactFile);
}

std::string input_env_name(std::string_view task_name) {
  std::string name = "SLUICE_INPUT_";
  for (char c : task_name) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    name += ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) ? c : '_';
  }
  return name;
}

Expected<std::string> file_checksum(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return make_error(ErrorCode::kIo, "cannot read " + path + ": " + std::strerror(errno));
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  // Most artifacts are a few KiB: a stack buffer reads them whole. A bigger file gets a
  // 1 MiB buffer, allocated without being zeroed (zeroing 1 MiB per seal was 4% of a
  // coordinator's CPU in a map-reduce of 1,000 small artifacts).
  char small[64 * 1024];
  std::unique_ptr<char[]> big;
  char* buf = small;
  std::size_t size = sizeof small;
  ssize_t n;
  while ((n = ::read(fd, buf, size)) > 0) {
    XXH3_64bits_update(state, buf, static_cast<std::size_t>(n));
    if (!big && static_cast<std::size_t>(n) == size) {
      big.reset(new char[1 << 20]);
      buf = big.get();
      size = 1 << 20;
    }
  }
  const int read_errno = errno;
  ::close(fd);
  const XXH64_hash_t h = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  if (n < 0)
    return make_error(ErrorCode::kIo, "cannot read " + path + ": " + std::strerror(read_errno));
  char hex[24];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
  return "xxh3:" + std::string(hex);
}

Expected<SealedArtifact> finalize_artifact(const std::string& path, const Provenance& p,
                                           bool hash_content) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  SealedArtifact sealed;
  {
    // Opening read-write is itself the check that the file is HDF5; the content hash is
    // read through the same open (each open of an HDF5 file costs ~50 us).
    auto file = ArtifactReader::open_for_update(path);
    if (!file) return make_error(ErrorCode::kInvalidInput, "bad artifact: " + file.error().message);
    if (hash_content) {
      auto content = artifact_content_hash(*file);
      if (!content)
        return make_error(ErrorCode::kInvalidInput, "bad artifact: " + content.error().message);
      sealed.content_hash = std::move(*content);
    }
    const hid_t f = static_cast<hid_t>(file->hdf5_file());
    bool ok = true;
    for (const auto& [name, value] : provenance_attributes(p)) {
      ok = ok &&
           (value.type() == Value::Type::kInt ? set_int_attr(f, name, value.get<std::int64_t>())
                                              : set_string_attr(f, name, value.get<std::string>()));
    }
    if (!ok || !file->close())
      return make_error(ErrorCode::kIo, "cannot record provenance in " + path + " (disk full?)");
  }
  auto sum = file_checksum(path);
  if (!sum) return tl::unexpected(sum.error());
  sealed.checksum = std::move(*sum);
  return sealed;
}

Expected<SealedArtifact> write_sealed_artifact(const std::string& path, const Map& values,
                                               const Provenance& p, bool hash_content) {
  auto writer = ArtifactWriter::create(path);
  if (!writer) return tl::unexpected(writer.error());
  for (const auto& [key, value] : values) {
    if (auto r = writer->put(key, value); !r)
      return make_error(r.error().code, "bad artifact: key '" + key + "': " + r.error().message);
  }
  for (const auto& [name, value] : provenance_attributes(p)) {
    if (auto r = writer->set_attribute(name, value); !r)
      return make_error(ErrorCode::kIo,
                        "cannot record provenance in " + path + ": " + r.error().message);
  }
  if (auto r = writer->commit(); !r) return tl::unexpected(r.error());
  SealedArtifact sealed;
  if (hash_content) sealed.content_hash = values_content_hash(values);
  auto sum = file_checksum(path);
  if (!sum) return tl::unexpected(sum.error());
  sealed.checksum = std::move(*sum);
  return sealed;
}

Expected<void> write_run_view(const std::string& run_h5,
                              const std::vector<std::pair<std::string, std::string>>& links) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const std::string tmp = run_h5 + ".tmp-" + std::to_string(::getpid());
  {
    h5::File file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    if (!file) return make_error(ErrorCode::kIo, "cannot create " + tmp);
    for (const auto& [name, target] : links)
      if (H5Lcreate_external(target.c_str(), "/", file.get(), name.c_str(), H5P_DEFAULT,
                             H5P_DEFAULT) < 0)
        return make_error(ErrorCode::kIo, "cannot link " + name + " in " + tmp);
    if (!file.reset()) return make_error(ErrorCode::kIo, "cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), run_h5.c_str()) != 0)
    return make_error(ErrorCode::kIo, "cannot rename " + tmp + ": " + std::strerror(errno));
  return {};
}

bool uses_input_placeholders(const TaskSpec& spec) {
  auto uses = [](const std::string& s) { return s.find("{inputs.") != std::string::npos; };
  if (uses(spec.shell)) return true;
  for (const auto& a : spec.command)
    if (uses(a)) return true;
  return false;
}

bool substitute_input_values(const std::string& in, const std::vector<InputArtifact>& parents,
                             std::string& out, std::string& why) {
  out.clear();
  std::size_t pos = 0;
  while (true) {
    const std::size_t open = in.find("{inputs.", pos);
    if (open == std::string::npos) break;
    const std::size_t close = in.find('}', open);
    if (close == std::string::npos) break;
    out.append(in, pos, open - pos);
    const std::string ref = in.substr(open + 8, close - open - 8);  // PARENT.KEY
    const InputArtifact* parent = nullptr;
    std::string key;
    for (const InputArtifact& p : parents) {
      const std::string& name = p.name;
      if (ref.size() > name.size() + 1 && ref.compare(0, name.size(), name) == 0 &&
          ref[name.size()] == '.' && (!parent || name.size() > parent->name.size())) {
        parent = &p;
        key = ref.substr(name.size() + 1);
      }
    }
    if (!parent) {
      why = "input placeholder {inputs." + ref + "} names no parent of this task";
      return false;
    }
    Expected<Value> value = make_error(ErrorCode::kNotFound, "");
    if (parent->values) {
      if (const Value* v = parent->values->find(key)) value = *v;
    } else {
      if (parent->artifact.empty()) {
        why =
            "input placeholder {inputs." + ref + "}: task '" + parent->name + "' wrote no artifact";
        return false;
      }
      auto reader = ArtifactReader::open(parent->artifact);
      if (!reader) {
        why = "input placeholder {inputs." + ref + "}: " + reader.error().message;
        return false;
      }
      value = reader->get(key);
    }
    if (!value) {
      why = "input placeholder {inputs." + ref + "}: task '" + parent->name + "' has no value '" +
            key + "'";
      return false;
    }
    auto text = scalar_text(*value);
    if (!text) {
      why = "input placeholder {inputs." + ref + "}: '" + key + "' is " + describe(*value) +
            ", not a scalar";
      return false;
    }
    out += *text;
    pos = close + 1;
  }
  out.append(in, pos, std::string::npos);
  return true;
}

}  // namespace sluice
