// libFuzzer target: TOML text -> validated Workflow or diagnostics. Any input must give
// one of the two, without a crash, a sanitizer report, a hang or unbounded memory.
// Also feeds the text to the dynamic-children request parser (`add-child --spec`).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sluice/engine/child_request.hpp"
#include "sluice/engine/loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  sluice::LoadOptions options;
  options.check_executables = false;  // no file system lookups: deterministic
  auto wf = sluice::load_workflow_text(text, "fuzz.toml", "/nonexistent", options);
  if (wf) {
    for (const auto& t : wf->tasks) (void)t.name.size();
  } else {
    for (const auto& d : wf.error()) (void)d.format();
  }
  (void)sluice::parse_child_requests(text, "fuzz-children.toml", "/nonexistent");
  return 0;
}
