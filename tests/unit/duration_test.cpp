#include <catch2/catch.hpp>

#include "sluice/duration.hpp"

using sluice::format_duration;
using sluice::Millis;
using sluice::parse_duration;
using sluice::parse_memory_mib;

TEST_CASE("durations with a unit are parsed to milliseconds", "[duration]") {
  CHECK(parse_duration("90s") == Millis(90'000));
  CHECK(parse_duration("10m") == Millis(600'000));
  CHECK(parse_duration("2h") == Millis(7'200'000));
  CHECK(parse_duration("1d") == Millis(86'400'000));
  CHECK(parse_duration("1h30m") == Millis(5'400'000));
  CHECK(parse_duration("1h30m15s") == Millis(5'415'000));
  CHECK(parse_duration("2m500ms") == Millis(120'500));
  CHECK(parse_duration("250ms") == Millis(250));
  CHECK(parse_duration("1.5h") == Millis(5'400'000));
  CHECK(parse_duration("  5s ") == Millis(5'000));
}

TEST_CASE("a bare number is a duration in seconds", "[duration]") {
  CHECK(parse_duration("90") == Millis(90'000));
  CHECK(parse_duration("0") == Millis(0));
  CHECK(parse_duration("1.5") == Millis(1'500));
}

TEST_CASE("malformed or negative durations are rejected", "[duration]") {
  for (const char* bad : {"", " ", "-5s", "-5", "10 minutes", "abc", "5x", "s", "1.", "1e3", "5s-",
                          "30m1h", "1h1h", "1h 30m", "1h30", "10M0", "99999999999999d"}) {
    INFO("input: '" << bad << "'");
    CHECK_FALSE(parse_duration(bad).has_value());
  }
}

TEST_CASE("durations are formatted for tables at a precision that fits their size", "[duration]") {
  CHECK(format_duration(Millis(0)) == "0ms");
  CHECK(format_duration(Millis(850)) == "850ms");
  CHECK(format_duration(Millis(12'345)) == "12.3s");
  CHECK(format_duration(Millis(59'999)) == "59.9s");
  CHECK(format_duration(Millis(245'000)) == "4m05s");
  CHECK(format_duration(Millis(7'800'000)) == "2h10m");
  CHECK(format_duration(Millis(93'600'000)) == "1d02h");
  CHECK(format_duration(Millis(-850)) == "-850ms");
}

TEST_CASE("memory sizes are parsed to MiB with binary units in any case", "[duration]") {
  CHECK(parse_memory_mib("512M") == 512);
  CHECK(parse_memory_mib("4G") == 4096);
  CHECK(parse_memory_mib("1T") == 1'048'576);
  CHECK(parse_memory_mib("2048") == 2048);
  CHECK(parse_memory_mib("512MB") == 512);
  CHECK(parse_memory_mib("4GB") == 4096);
  CHECK(parse_memory_mib("4GiB") == 4096);
  CHECK(parse_memory_mib("4gib") == 4096);
  CHECK(parse_memory_mib("4g") == 4096);
  CHECK(parse_memory_mib("4 GB") == 4096);
  CHECK(parse_memory_mib("1.5G") == 1536);
  CHECK(parse_memory_mib("2048K") == 2);
  CHECK(parse_memory_mib("1K") == 1);  // a fraction of a MiB rounds up
}

TEST_CASE("malformed or negative memory sizes are rejected", "[duration]") {
  for (const char* bad : {"", "G", "-1G", "4X", "4GBs", "four", "4G4", "1e3M"}) {
    INFO("input: '" << bad << "'");
    CHECK_FALSE(parse_memory_mib(bad).has_value());
  }
}
