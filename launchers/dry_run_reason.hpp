// Why a task of `sluice run --dry-run` misses the cache, in the user's words: when only
// matrix values changed, the parameter and its values ("matrix value lr = 0.02, was
// 0.01") instead of the key parts they change ("version or name, command").
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/engine/store.hpp"
#include "sluice/workflow.hpp"

namespace sluice::cli {

class ChangeExplainer {
 public:
  explicit ChangeExplainer(RunStore& store) : store_(store) {}
  // `changed`: CacheKeyParts::changed_since() labels for task `now` against the latest
  // entry of its name, made by `run_id`. Returns the labels to print.
  std::vector<std::string> explain(const TaskSpec& now, const std::string& run_id,
                                   std::vector<std::string> changed);

 private:
  const TaskSpec* earlier(const std::string& run_id, const std::string& task);
  RunStore& store_;
  std::map<std::string, std::optional<Workflow>> runs_;  // definitions read, by run id
};

}  // namespace sluice::cli
