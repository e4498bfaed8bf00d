#include <algorithm>
#include <charconv>

#include "sluice/duration.hpp"
#include "sluice/engine/backend_options.hpp"

namespace sluice {
namespace {

bool is_pattern(const std::string& key) {
  return key.size() > 2 && key.compare(key.size() - 2, 2, ".*") == 0;
}

std::string valid_keys(const OptionTable& table) {
  return "valid keys:\n" + format_option_table(table);
}

}  // namespace

std::optional<std::int64_t> parse_option_int(const std::string& text) {
  std::int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

OptionCheck check_count(std::int64_t min, std::int64_t max) {
  return [min, max](const std::string& v) -> std::string {
    auto n = parse_option_int(v);
    if (n && *n >= min && *n <= max) return "";
    return "not a whole number from " + std::to_string(min) + " to " + std::to_string(max);
  };
}

OptionCheck check_duration() {
  return [](const std::string& v) -> std::string {
    auto d = parse_duration(v);
    return d && d->count() > 0 ? "" : "not a duration (use 500ms, 2s, 10m, 1h)";
  };
}

OptionCheck check_one_of(std::vector<std::string> choices) {
  return [choices = std::move(choices)](const std::string& v) -> std::string {
    if (std::find(choices.begin(), choices.end(), v) != choices.end()) return "";
    std::string list;
    for (const auto& c : choices) list += (list.empty() ? "" : " or ") + c;
    return "use " + list;
  };
}

namespace {

// Worded as parse_backend_options() words it, which programs and tests already know.
OptionCheck check_number(const std::string& key, std::int64_t min, std::int64_t max) {
  return [key, min, max](const std::string& v) -> std::string {
    auto n = parse_option_int(v);
    if (n && *n >= min && *n <= max) return "";
    return key + " must be a number, not '" + v + "' (" + std::to_string(min) + " to " +
           std::to_string(max) + ")";
  };
}

}  // namespace

const OptionTable& common_option_table() {
  static const OptionTable table = {
      {"cpus", "", "cpu slots to offer (default: the backend decides; local: the usable cores)",
       check_number("cpus", 0, 1 << 20)},
      {"gpus", "", "GPUs to hand out (default: detected; -1: detect)",
       check_number("gpus", -1, 4096)},
      {"executors", "", "executor labels offered, comma-separated (default: any label)", {}},
  };
  return table;
}

OptionTable merge_option_tables(OptionTable a, const OptionTable& b) {
  for (const auto& spec : b) {
    auto same = [&](const OptionSpec& s) { return s.key == spec.key; };
    if (std::none_of(a.begin(), a.end(), same)) a.push_back(spec);
  }
  return a;
}

const OptionSpec* find_option(const OptionTable& table, const std::string& key) {
  for (const auto& spec : table) {
    if (spec.key == key) return &spec;
    if (is_pattern(spec.key)) {
      const std::size_t prefix = spec.key.size() - 1;  // keeps the '.'
      if (key.size() > prefix && key.compare(0, prefix, spec.key, 0, prefix) == 0) return &spec;
    }
  }
  return nullptr;
}

Expected<void> check_options(const std::string& backend, const OptionTable& table,
                             const std::map<std::string, std::string>& options) {
  for (const auto& [key, value] : options) {
    const OptionSpec* spec = find_option(table, key);
    if (spec == nullptr)
      return make_error(ErrorCode::kInvalidInput, "unknown option '" + key + "' for backend " +
                                                      backend + "; " + valid_keys(table));
    if (!spec->check) continue;
    if (std::string why = spec->check(value); !why.empty())
      return make_error(ErrorCode::kInvalidInput, "option " + key + "=" + value + " for backend " +
                                                      backend + ": " + why + "\n" +
                                                      format_option_table({*spec}));
  }
  return {};
}

std::string format_option_table(const OptionTable& table, const std::string& indent) {
  std::size_t width = 0;
  for (const auto& spec : table) width = std::max(width, spec.key.size());
  std::string out;
  for (const auto& spec : table) {
    out += indent + spec.key + std::string(width - spec.key.size() + 2, ' ') + spec.doc;
    if (!spec.default_value.empty()) out += " (default: " + spec.default_value + ")";
    out += '\n';
  }
  return out;
}

}  // namespace sluice
