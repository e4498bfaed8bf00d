// The stored form of a workflow built in C++ (flow.hpp): a TOML document that lists
// every function task with its function, arguments, resources and parents, so that a
// run can be inspected (`sluice results` finds the final tasks), resumed or executed
// by a process other than the one that built it (WorkflowRun::by_id(id).run()).
//
//   # sluice-sdk: ...
//   [workflow]
//   name = "..."  project = "..."
//   [[task]]
//   name = "train_model.1"   function = "train_model@0.0.1"   after = ["load"]  ...
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "sluice/error.hpp"
#include "sluice/workflow.hpp"

namespace sluice {

// True when `text` is an SDK definition rather than a TOML workflow file.
bool is_sdk_definition(std::string_view text);

// The definition text of a workflow whose tasks are function tasks.
std::string sdk_definition_text(const Workflow& wf);

// Content hash (16 hex digits) over names, functions, versions, arguments, resources
// and edges of a function workflow.
std::string sdk_content_hash(const Workflow& wf);

// Rebuilds the Workflow from sdk_definition_text(); kInvalidInput when the text is not
// one. Workers are launched as `program` (the name of this program's binary) unless
// `program` is empty, which keeps the stored commands.
Expected<Workflow> load_sdk_definition(std::string_view text, const std::string& base_dir,
                                       const std::string& program = "");

// The function of an orchestration's own task (orchestration.hpp): a run that has it is
// driven by its program's coroutine, so only that program can resume it.
inline constexpr std::string_view kOrchestrationFunction = "sluice.orchestration@1";

// The worker command for a function task: {program, "__sluice_worker", function, arguments}.
std::vector<std::string> worker_command(const std::string& program, const std::string& function,
                                        const std::string& arguments);
// The basename of this process's executable (/proc/self/exe).
std::string this_program_name();

}  // namespace sluice
