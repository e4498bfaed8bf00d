// The heap reservation a large workflow load makes (core/src/heap_reserve.hpp): it grows
// glibc's heap once and advises huge pages there, and loading through it gives the same
// workflow as loading without it.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "loader/heap_reserve.hpp"
#include "sluice/engine/loader.hpp"
#include "support/scratch_dir.hpp"

namespace {

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
constexpr bool kReserves = true;
#else
constexpr bool kReserves = false;  // sanitizers bring their own allocator
#endif

// The VmFlags of the mapping that holds `address` (/proc/self/smaps), "" if none.
std::string vm_flags_at(const void* address) {
  std::ifstream smaps("/proc/self/smaps");
  const auto a = reinterpret_cast<std::uintptr_t>(address);
  bool inside = false;
  std::string line;
  while (std::getline(smaps, line)) {
    std::uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream range(line);
    if (range >> std::hex >> lo >> dash >> hi && dash == '-' &&
        line.find(' ') != std::string::npos && line.find(':') > line.find(' ')) {
      inside = lo <= a && a < hi;
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return "";
}

}  // namespace

TEST_CASE("a large reservation grows the heap once, in huge pages") {
  auto* before = static_cast<char*>(sbrk(0));
  sluice::detail::HeapReservation heap(std::size_t{64} << 20);
  if (!kReserves) {
    CHECK(heap.grown() == 0);
    return;
  }
  REQUIRE(heap.grown() >= (std::size_t{64} << 20));
  auto* after = static_cast<char*>(sbrk(0));
  CHECK(after - before >= static_cast<std::ptrdiff_t>(heap.grown()));
  // The middle of the new range is advised for transparent huge pages.
  CHECK(vm_flags_at(before + heap.grown() / 2).find(" hg") != std::string::npos);
  // Small blocks now come from the reserved range without growing the heap again.
  std::vector<void*> blocks;
  for (int i = 0; i < 10000; ++i) blocks.push_back(std::malloc(100));
  CHECK(static_cast<char*>(sbrk(0)) == after);
  for (void* b : blocks) std::free(b);
}

TEST_CASE("a small reservation does nothing") {
  auto* before = sbrk(0);
  sluice::detail::HeapReservation heap(std::size_t{1} << 20);
  CHECK(heap.grown() == 0);
  CHECK(sbrk(0) == before);
}

TEST_CASE("a file large enough to reserve for loads like the same text without it") {
  // ~2.5 MB of TOML: above the size at which load_workflow_file reserves.
  std::ostringstream toml;
  toml << "[workflow]\nname = \"big\"\n\n";
  const int n = 40000;
  for (int i = 0; i < n; ++i) {
    toml << "[tasks.t" << i << "]\ncommand = [\"true\", \"" << i << "\"]\n";
    if (i >= 2) toml << "after = [\"t" << (i - 1) << "\", \"t" << (i / 2) << "\"]\n";
  }
  const std::string text = toml.str();
  REQUIRE(text.size() > (std::size_t{32} << 20) / 24);
  sluice::testing::ScratchDir scratch;
  const auto& dir = scratch.path();
  const auto path = dir / "big.toml";
  std::ofstream(path) << text;

  auto from_file = sluice::load_workflow_file(path.string());
  auto from_text = sluice::load_workflow_text(text, path.string(), dir.string());
  REQUIRE(from_file);
  REQUIRE(from_text);
  REQUIRE(from_file->tasks.size() == static_cast<std::size_t>(n));
  REQUIRE(from_text->tasks.size() == static_cast<std::size_t>(n));
  CHECK(from_file->content_hash == from_text->content_hash);
  for (int i : {0, 1, 2, 777, n - 1}) {
    const auto& a = from_file->tasks[static_cast<std::size_t>(i)];
    const auto& b = from_text->tasks[static_cast<std::size_t>(i)];
    CHECK(a.name == b.name);
    CHECK(a.command == b.command);
    CHECK(a.after == b.after);
  }
  CHECK(from_file->tasks[n - 1].after.size() == 2);
}
