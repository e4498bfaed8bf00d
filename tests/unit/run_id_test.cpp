#include <algorithm>
#include <string>
#include <unordered_set>
#include <vector>

#include <catch2/catch.hpp>

#include "sluice/engine/run_id.hpp"

using sluice::is_run_id;
using sluice::new_run_id;

namespace {
constexpr std::string_view kAlphabet = "0123456789abcdefghjkmnpqrstvwxyz";
}

TEST_CASE("A run id is 26 characters of lowercase Crockford base32", "[run_id]") {
  for (int i = 0; i < 100; ++i) {
    std::string id = new_run_id();
    REQUIRE(id.size() == 26);
    for (char c : id) {
      INFO("id " << id << " char '" << c << "'");
      REQUIRE(kAlphabet.find(c) != std::string_view::npos);
    }
    REQUIRE(is_run_id(id));
  }
}

TEST_CASE("Run ids made later sort after run ids made earlier", "[run_id]") {
  std::vector<std::string> ids;
  for (std::uint64_t ms : {0ull, 1ull, 31ull, 32ull, 1000ull, 1700000000000ull, 1700000000001ull,
                           1700000001000ull, 2000000000000ull, (1ull << 48) - 1}) {
    ids.push_back(new_run_id(ms));
  }
  for (std::size_t i = 1; i < ids.size(); ++i) {
    INFO(ids[i - 1] << " < " << ids[i]);
    REQUIRE(ids[i - 1] < ids[i]);
  }
  // The time part is the first 10 characters; the clock's own ids sort after old ones.
  REQUIRE(new_run_id(1700000000000ull) < new_run_id());
  REQUIRE(new_run_id(1700000000000ull).substr(0, 10) == new_run_id(1700000000000ull).substr(0, 10));
}

TEST_CASE("Ten thousand run ids are all different", "[run_id]") {
  std::unordered_set<std::string> seen;
  for (int i = 0; i < 10000; ++i) seen.insert(new_run_id());
  REQUIRE(seen.size() == 10000);
  // Even with the same millisecond the random part keeps them apart.
  std::unordered_set<std::string> same_ms;
  for (int i = 0; i < 10000; ++i) same_ms.insert(new_run_id(1700000000000ull));
  REQUIRE(same_ms.size() == 10000);
}

TEST_CASE("is_run_id rejects strings that are not run ids", "[run_id]") {
  std::string good = new_run_id();
  REQUIRE(is_run_id(good));
  REQUIRE_FALSE(is_run_id(""));
  REQUIRE_FALSE(is_run_id(good.substr(0, 25)));
  REQUIRE_FALSE(is_run_id(good + "0"));
  std::string upper = good;
  std::transform(upper.begin(), upper.end(), upper.begin(), [](char c) {
    return static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  });
  if (upper != good) REQUIRE_FALSE(is_run_id(upper));
  for (char bad : {'i', 'l', 'o', 'u', '-', ' ', '/'}) {
    std::string s = good;
    s[12] = bad;
    INFO("with '" << bad << "'");
    REQUIRE_FALSE(is_run_id(s));
  }
  // More than 48 bits of time would need a first character above '7'.
  std::string s = good;
  s[0] = '8';
  REQUIRE_FALSE(is_run_id(s));
}
