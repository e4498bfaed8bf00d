#include "sluice/engine/backend_registry.hpp"

#include <algorithm>

namespace sluice {
namespace {

struct Registered {
  BackendFactory factory;
  OptionTable options;
};

std::map<std::string, Registered>& registry() {
  static std::map<std::string, Registered> backends;
  return backends;
}

Error unknown_backend(const std::string& name) {
  std::string known;
  for (auto& n : backend_names()) known += (known.empty() ? "" : ", ") + n;
  return Error{ErrorCode::kNotFound, "unknown backend '" + name + "' (available: " + known + ")"};
}

std::map<std::string, WorkerEntry>& worker_entries() {
  static std::map<std::string, WorkerEntry> entries;
  return entries;
}

}  // namespace

bool Capacity::offers(const std::string& executor) const {
  if (executors.empty() || executor.empty()) return true;
  return std::find(executors.begin(), executors.end(), executor) != executors.end();
}

std::vector<Expected<std::string>> Backend::launch_batch(std::span<const LaunchRequest> requests) {
  std::vector<Expected<std::string>> handles;
  handles.reserve(requests.size());
  for (const LaunchRequest& r : requests) handles.push_back(launch(r));
  return handles;
}

bool Backend::reattach(const std::string&, TaskId, std::uint32_t) {
  return false;
}

std::string Backend::unrecorded_handle(const std::string&) {
  return {};
}

void Backend::set_stopping_check(std::function<bool()>) {}

void register_backend(const std::string& name, BackendFactory factory, OptionTable options) {
  registry()[name] =
      Registered{std::move(factory), merge_option_tables(common_option_table(), options)};
}

Expected<std::unique_ptr<Backend>> create_backend(const std::string& name,
                                                  const BackendOptions& options) {
  auto it = registry().find(name);
  if (it == registry().end()) return tl::unexpected(unknown_backend(name));
  if (auto checked = check_options(name, it->second.options, option_strings(options)); !checked)
    return tl::unexpected(checked.error());
  return it->second.factory(options);
}

Expected<OptionTable> backend_option_table(const std::string& name) {
  auto it = registry().find(name);
  if (it == registry().end()) return tl::unexpected(unknown_backend(name));
  return it->second.options;
}

Expected<void> check_backend_options(const std::string& name,
                                     const std::map<std::string, std::string>& options) {
  auto it = registry().find(name);
  if (it == registry().end()) return tl::unexpected(unknown_backend(name));
  return check_options(name, it->second.options, options);
}

void register_worker_entry(const std::string& name, WorkerEntry entry) {
  worker_entries()[name] = std::move(entry);
}

std::optional<int> enter_worker(const std::string& name, const BackendOptions& options) {
  auto it = worker_entries().find(name);
  if (it == worker_entries().end()) return std::nullopt;
  return it->second(options);
}

std::vector<std::string> backend_names() {
  std::vector<std::string> names;
  for (auto& [n, r] : registry()) names.push_back(n);
  return names;
}

}  // namespace sluice
