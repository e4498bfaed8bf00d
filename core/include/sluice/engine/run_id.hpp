// Run ids: 26 characters of lowercase Crockford base32 — 48 bits of milliseconds since
// the epoch followed by 80 random bits — so they are unique across machines without
// coordination and sort by creation time as plain strings.
#pragma once

#include <cstdint>
#include <string>

namespace sluice {

std::string new_run_id();
// Same, with a given time (milliseconds since the epoch); for tests.
std::string new_run_id(std::uint64_t epoch_ms);
bool is_run_id(const std::string& s);

}  // namespace sluice
