#include "dry_run_reason.hpp"

#include <algorithm>

#include "sluice/engine/loader.hpp"

namespace sluice::cli {
namespace {

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

}  // namespace

const TaskSpec* ChangeExplainer::earlier(const std::string& run_id, const std::string& task) {
  auto [it, fresh] = runs_.try_emplace(run_id);
  if (fresh)
    if (auto run = store_.get_run(run_id))
      if (auto text = store_.run_definition(run_id)) {
        LoadOptions opts;
        opts.check_executables = false;
        if (auto wf = load_workflow_text(*text, run->source_path, run->base_dir, opts))
          it->second = std::move(*wf);
      }
  if (!it->second) return nullptr;
  auto t = it->second->index.find(task);
  return t == it->second->index.end() ? nullptr : &it->second->tasks[t->second];
}

std::vector<std::string> ChangeExplainer::explain(const TaskSpec& now, const std::string& run_id,
                                                  std::vector<std::string> changed) {
  const TaskSpec* was = earlier(run_id, now.name);
  if (!was || was->group != now.group || was->version != now.version ||
      was->params.size() != now.params.size())
    return changed;
  std::vector<std::string> values;
  std::string shell = was->shell;
  std::vector<std::string> command = was->command;
  for (std::size_t i = 0; i < now.params.size(); ++i) {
    const auto& [name, value] = now.params[i];
    if (was->params[i].first != name) return changed;
    if (was->params[i].second == value) continue;
    values.push_back("matrix value " + name + " = " + value + " (was " + was->params[i].second +
                     ")");
    shell = replace_all(shell, was->params[i].second, value);
    for (auto& a : command) a = replace_all(a, was->params[i].second, value);
  }
  if (values.empty()) return changed;
  // The identity part is the parameters; the command changed with them when putting the
  // new values in the old command gives the new one.
  std::vector<std::string> out = values;
  for (const std::string& c : changed) {
    if (c == "version or name") continue;
    if (c == "command" && shell == now.shell && command == now.command) continue;
    out.push_back(c);
  }
  return out;
}

}  // namespace sluice::cli
