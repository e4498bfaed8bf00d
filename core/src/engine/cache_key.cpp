#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <filesystem>

#define XXH_STATIC_LINKING_ONLY  // XXH3_state_t on the stack
#include <xxhash.h>

#include "sluice/engine/artifacts.hpp"
#include "sluice/engine/cache_key.hpp"

namespace sluice {
namespace {

// Length-prefixed fields, so ("ab","c") and ("a","bc") differ.
class KeyHasher {
 public:
  KeyHasher() { XXH3_64bits_reset(&state_); }
  KeyHasher& add(std::string_view s) {
    const std::uint64_t n = s.size();
    XXH3_64bits_update(&state_, &n, sizeof n);
    XXH3_64bits_update(&state_, s.data(), s.size());
    return *this;
  }
  std::string hex() {  // "xxh3:" and 16 lower-case hex digits (a few per task: no printf)
    static constexpr char kDigits[] = "0123456789abcdef";
    std::uint64_t v = XXH3_64bits_digest(&state_);
    std::string out = "xxh3:0000000000000000";
    for (std::size_t i = out.size(); v != 0; v >>= 4) out[--i] = kDigits[v & 0xf];
    return out;
  }

 private:
  XXH3_state_t state_;
};

struct Part {
  const char* name;
  const char* label;
  std::string CacheKeyParts::*field;
};
constexpr Part kParts[] = {
    {"identity", "version or name", &CacheKeyParts::identity},
    {"command", "command", &CacheKeyParts::command},
    {"env", "env", &CacheKeyParts::env},
    {"workdir", "workdir", &CacheKeyParts::workdir},
    {"outputs", "outputs", &CacheKeyParts::outputs},
    {"inputs", "inputs", &CacheKeyParts::inputs},
};

// A key is "xxh3:" and 16 hex digits: its 64 bits are the digest. Anything else (a key
// filed by another version) is hashed.
std::uint64_t key_digest(std::string_view key) {
  constexpr std::string_view kPrefix = "xxh3:";
  if (key.size() == kPrefix.size() + 16 && key.substr(0, kPrefix.size()) == kPrefix) {
    std::uint64_t v = 0;
    auto [end, ec] = std::from_chars(key.data() + kPrefix.size(), key.data() + key.size(), v, 16);
    if (ec == std::errc() && end == key.data() + key.size()) return v;
  }
  return XXH3_64bits(key.data(), key.size());
}

}  // namespace

std::string CacheKeyParts::key() const {
  KeyHasher h;
  h.add("sluice-cache-v1");
  for (const Part& p : kParts) h.add(this->*p.field);
  return h.hex();
}

std::string CacheKeyParts::serialize() const {
  std::string out;
  out.reserve(6 * 32);
  for (const Part& p : kParts) {
    if (!out.empty()) out += ';';
    out.append(p.name).append(1, '=').append(this->*p.field);
  }
  return out;
}

CacheKeyParts CacheKeyParts::parse(const std::string& text) {
  CacheKeyParts parts;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find(';', pos);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(pos, end - pos);
    const std::size_t eq = item.find('=');
    if (eq != std::string::npos)
      for (const Part& p : kParts)
        if (item.compare(0, eq, p.name) == 0 && eq == std::strlen(p.name))
          parts.*p.field = item.substr(eq + 1);
    pos = end + 1;
  }
  return parts;
}

std::vector<std::string> CacheKeyParts::changed_since(const CacheKeyParts& earlier) const {
  std::vector<std::string> out;
  for (const Part& p : kParts)
    if (this->*p.field != earlier.*p.field) out.emplace_back(p.label);
  return out;
}

CacheKeyParts cache_key_parts(const TaskSpec& spec, const std::string& base_dir,
                              const std::vector<std::string>& command, const std::string& shell,
                              std::span<const std::string> input_results) {
  CacheKeyParts parts;
  KeyHasher id;
  id.add(spec.group.empty() ? spec.name : spec.group).add(spec.version);
  for (const auto& [k, v] : spec.params) id.add(k).add(v);
  parts.identity = id.hex();

  KeyHasher cmd;
  if (!shell.empty()) {
    cmd.add("shell").add(shell);
  } else {
    cmd.add("argv");
    for (const auto& a : command) cmd.add(a);
  }
  parts.command = cmd.hex();

  KeyHasher env;
  for (const auto& [k, v] : spec.env) env.add(k).add(v);
  parts.env = env.hex();

  // Inside the workflow's tree: relative, so moving the project keeps the cache.
  // (The usual workdir is the workflow's own directory: spare the path arithmetic.)
  std::string rel =
      spec.workdir == base_dir
          ? std::string(".")
          : std::filesystem::path(spec.workdir).lexically_relative(base_dir).generic_string();
  KeyHasher wd;
  wd.add(rel.empty() || rel.rfind("..", 0) == 0 ? spec.workdir : rel);
  parts.workdir = wd.hex();

  KeyHasher outs;
  for (const auto& o : spec.outputs) outs.add(o);
  parts.outputs = outs.hex();

  KeyHasher in;
  for (const auto& r : input_results) in.add(r);
  parts.inputs = in.hex();
  return parts;
}

std::string kept_output_path(const std::string& attempt_dir, std::size_t index) {
  return attempt_dir + "/outputs/" + std::to_string(index);
}

Expected<std::string> attempt_result_hash(const std::string& attempt_dir) {
  const std::string artifact = artifact_path(attempt_dir);
  struct stat st;
  if (::stat(artifact.c_str(), &st) != 0) return attempt_result_hash(attempt_dir, "none");
  auto content = artifact_content_hash(artifact);
  if (!content) return tl::unexpected(content.error());
  return attempt_result_hash(attempt_dir, *content);
}

Expected<std::string> attempt_result_hash(const std::string& attempt_dir,
                                          const std::string& content_hash) {
  KeyHasher h;
  h.add(content_hash);
  struct stat st;
  for (std::size_t i = 0;; ++i) {
    const std::string kept = kept_output_path(attempt_dir, i);
    if (::stat(kept.c_str(), &st) != 0) break;
    auto sum = file_checksum(kept);
    if (!sum) return tl::unexpected(sum.error());
    h.add(*sum);
  }
  return h.hex();
}

bool cache_source_present(const CacheEntry& e) {
  // ATTEMPT_DIR is RUN/tasks/TASK/N.
  const std::filesystem::path run =
      std::filesystem::path(e.attempt_dir).parent_path().parent_path().parent_path();
  std::error_code ec;
  return std::filesystem::is_directory(run, ec);
}

Expected<CacheLookup> lookup_cache(RunStore& store, const std::string& project,
                                   const std::string& key) {
  auto found = store.find_cache(project, key);
  if (!found) return tl::unexpected(found.error());
  CacheLookup out;
  if (!*found) return out;
  out.entry = std::move(**found);
  if (!cache_source_present(out.entry)) {
    out.status = CacheLookup::Status::kStale;
    return out;
  }
  auto actual = attempt_result_hash(out.entry.attempt_dir);
  if (actual && *actual != out.entry.result_hash) {
    // Packed values live in the store: hash those.
    auto packed = store.attempt_values(out.entry.run_id, out.entry.task, out.entry.attempt);
    if (packed && *packed) {
      auto values = std::make_shared<const Map>(std::move(**packed));
      actual = attempt_result_hash(out.entry.attempt_dir, values_content_hash(*values));
      if (actual && *actual == out.entry.result_hash) out.values = std::move(values);
    }
  }
  out.status = actual && *actual == out.entry.result_hash ? CacheLookup::Status::kHit
                                                          : CacheLookup::Status::kStale;
  return out;
}

Expected<std::optional<CacheKeyFilter>> CacheKeyFilter::load(RunStore& store,
                                                             const std::string& project,
                                                             std::size_t max_keys) {
  CacheKeyFilter f;
  auto complete = store.visit_cache_keys(project, [&](std::string_view key) {
    if (f.digests_.size() >= max_keys) return false;
    f.digests_.push_back(key_digest(key));
    return true;
  });
  if (!complete) return tl::unexpected(complete.error());
  if (!*complete) return std::optional<CacheKeyFilter>{};
  std::sort(f.digests_.begin(), f.digests_.end());
  return std::optional<CacheKeyFilter>(std::move(f));
}

bool CacheKeyFilter::may_hold(std::string_view key) const {
  return std::binary_search(digests_.begin(), digests_.end(), key_digest(key));
}

}  // namespace sluice
