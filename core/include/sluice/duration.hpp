// Human durations as users write them in workflow files: "90s", "10m", "2h", "1d",
// "1h30m", "250ms", or a bare number of seconds. Stored as whole milliseconds.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

using Millis = std::chrono::milliseconds;

// Parses a human duration. Returns nullopt for anything malformed or negative.
std::optional<Millis> parse_duration(std::string_view text);

// Formats a duration for tables: "850ms", "12.3s", "4m05s", "2h10m".
std::string format_duration(Millis d);

// Parses a memory size: "512M", "4G", "1T", "2048" (MiB). Returns MiB, or nullopt.
std::optional<std::int64_t> parse_memory_mib(std::string_view text);

}  // namespace sluice
