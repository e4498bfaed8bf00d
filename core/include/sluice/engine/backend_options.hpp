// A backend's options table: every key the backend understands, with its default and a
// one-line description, and a check of its value. Each backend registers its table with
// its factory (backend_registry.hpp); the registry adds the keys every backend takes
// (cpus, gpus, executors). Options given anywhere (`run -O`, `submit`, `config save`, a
// saved configuration, an SDK program's --config) are checked against it before anything
// runs or is saved, so a typo is an error, never a silently ignored setting.
//
//   OptionTable t = {
//       {"kill_grace_ms", "2000", "ms between SIGTERM and SIGKILL", check_count(0, 3'600'000)},
//   };
//
// Thread-safety: plain values; the checks are pure functions.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sluice/error.hpp"

namespace sluice {

// Returns "" when `value` is acceptable, otherwise why not ("not a duration (use 2s)").
using OptionCheck = std::function<std::string(const std::string& value)>;

struct OptionSpec {
  // The key as written in -O KEY=VALUE. A key ending in ".*" ("executor.*") stands for
  // every key with that prefix and a non-empty rest ("executor.gpu").
  std::string key;
  std::string default_value;  // as text; "" when the backend decides (said in `doc`)
  std::string doc;            // one line
  OptionCheck check;          // empty: any text
};

using OptionTable = std::vector<OptionSpec>;

// Checks for the common kinds of values.
OptionCheck check_count(std::int64_t min, std::int64_t max);  // a whole number in [min, max]
OptionCheck check_duration();                                 // 500ms, 2s, 10m, 1h (> 0)
OptionCheck check_one_of(std::vector<std::string> choices);   // exactly one of `choices`

// `text` as a whole decimal number, or nullopt (empty, trailing characters, overflow).
std::optional<std::int64_t> parse_option_int(const std::string& text);

// The keys every backend takes, through BackendOptions' own fields: cpus, gpus, executors.
const OptionTable& common_option_table();

// `a` followed by the entries of `b` whose key `a` does not have.
OptionTable merge_option_tables(OptionTable a, const OptionTable& b);

// The entry of `table` that `key` names (exactly, or through a ".*" pattern); nullptr
// when none does.
const OptionSpec* find_option(const OptionTable& table, const std::string& key);

// Checks every KEY=VALUE of `options` against `table`. kInvalidInput for an unknown key
// ("unknown option 'bogus' for backend local; valid keys: ..." with every key and its
// doc) or a value its check refuses ("option cpus=abc for backend local: not a whole
// number ...").
Expected<void> check_options(const std::string& backend, const OptionTable& table,
                             const std::map<std::string, std::string>& options);

// The table as lines "  KEY  DOC (default: D)", one per key, each ending in '\n'.
std::string format_option_table(const OptionTable& table, const std::string& indent = "  ");

}  // namespace sluice
