#include "sluice/function.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>

#include "sdk/worker_preamble.hpp"
#include "sluice/engine/artifacts.hpp"
#include "sluice/engine/child_request.hpp"
#include "sluice/engine/hdf5_codec.hpp"
#include "sluice/engine/results_file.hpp"
#include "sluice/function_args.hpp"

namespace sluice {
namespace {

struct Registry {
  std::mutex mu;
  // State below is protected by mu. std::map: pointers stay valid as entries are added.
  std::map<std::string, FunctionInfo, std::less<>> functions;
};

Registry& registry() {
  static Registry r;
  return r;
}

thread_local TaskContext* t_current = nullptr;

// Makes `ctx` the calling thread's current task for sluice::log() while in scope.
class CurrentTask {
 public:
  explicit CurrentTask(TaskContext& ctx) : saved_(t_current) { t_current = &ctx; }
  ~CurrentTask() { t_current = saved_; }
  CurrentTask(const CurrentTask&) = delete;
  CurrentTask& operator=(const CurrentTask&) = delete;

 private:
  TaskContext* saved_;
};

}  // namespace

void register_function(FunctionInfo info) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::string key = info.key();
  r.functions.insert_or_assign(std::move(key), std::move(info));
}

const FunctionInfo* find_function(std::string_view key) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.functions.find(key);
  return it == r.functions.end() ? nullptr : &it->second;
}

Expected<Value> invoke_function(const FunctionInfo& f, TaskContext& ctx, std::vector<Value>& args) {
  CurrentTask current(ctx);
  try {
    return f.invoke(ctx, args);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kBackend, f.key() + ": " + e.what());
  } catch (...) {
    return make_error(ErrorCode::kBackend, f.key() + ": unknown exception");
  }
}

TaskContext::~TaskContext() = default;

std::ostream& TaskContext::log() {
  if (stdout_is_log) return std::cout;
  if (log_) return *log_;
  if (attempt_dir.empty()) return std::clog;
  std::error_code ec;  // in-process attempts make their directory on first use
  std::filesystem::create_directories(attempt_dir, ec);
  auto file = std::make_unique<std::ofstream>(attempt_dir + "/stdout", std::ios::app);
  if (!*file) return std::clog;
  log_ = std::move(file);
  return *log_;
}

std::ostream& log() {
  return t_current ? t_current->log() : std::clog;
}

std::string TaskContext::add_child(const ChildRequest& child) {
  std::error_code ec;  // in-process attempts make their directory on first use
  std::filesystem::create_directories(attempt_dir, ec);
  auto text = child_request_text(child);
  auto path = write_child_request(attempt_dir, text);
  if (!path) throw std::move(path).error();
  return *path;
}

int execute_function_attempt(const FunctionAttempt& a, std::string& why,
                             std::string* content_hash) {
  const FunctionInfo* f = find_function(a.function);
  if (!f) {
    why = "no function registered as '" + a.function + "' in this program";
    return 2;
  }
  auto args = decode_arguments(a.arguments);
  if (!args) {
    why = args.error().message;
    return 2;
  }
  // A parent that returned nothing left no artifact: its result is null.
  auto parent_result = [&](const ArgumentRef& r) -> Expected<Value> {
    const std::string path = a.input ? a.input(input_env_name(r.parent)) : std::string();
    if (path.empty()) return Value();
    // A packed parent's values are its group in a segment file (SLUICE_INPUT_<P>_GROUP).
    const std::string group = a.input(input_env_name(r.parent) + "_GROUP");
    auto reader = ArtifactReader::open(path, group);
    if (!reader) return tl::unexpected(reader.error());
    if (!reader->contains(kResultKey)) {
      auto all = reader->get_all();  // a command task's artifact: all its keys
      if (!all) return tl::unexpected(all.error());
      return Value(std::move(*all));
    }
    return reader->get(kResultKey);
  };
  std::vector<Value> values;
  values.reserve(args->size());
  for (Argument& arg : *args) {
    if (arg.kind == Argument::Kind::kValue) {
      values.push_back(std::move(arg.value));
      continue;
    }
    List gathered;
    for (const ArgumentRef& r : arg.refs) {
      auto v = parent_result(r);
      if (!v) {
        why = "input from '" + r.parent + "': " + v.error().message;
        return 2;
      }
      gathered.push_back(std::move(*v));
    }
    if (arg.kind == Argument::Kind::kResult) {
      values.push_back(gathered.empty() ? Value() : std::move(gathered.front()));
    } else {
      values.push_back(Value(std::move(gathered)));
    }
  }
  Expected<Value> result;
  {
    TaskContext ctx;  // closes the attempt's log before the attempt is reported done
    ctx.run_id = a.run_id;
    ctx.task = a.task;
    ctx.attempt = a.attempt;
    ctx.attempt_dir = a.attempt_dir;
    ctx.stdout_is_log = a.stdout_is_log;
    result = invoke_function(*f, ctx, values);
  }
  if (!result) {
    why = "task failed: " + result.error().message;
    return 1;
  }
  if (f->returns_void) return 0;
  std::error_code ec;  // in-process attempts make their directory on first use
  const bool nul_string = result->type() == Value::Type::kString &&
                          result->get<std::string>().find('\0') != std::string::npos;
  if (!a.results.empty() && !nul_string) {
    std::string bytes;
    append_value_bytes(*result, bytes);
    if (bytes.size() <= kMaxPackedValueBytes) {
      std::filesystem::create_directories(a.attempt_dir, ec);
      if (auto ok = append_packed_value(a.results, kResultKey, *result); !ok) {
        why = "cannot write the result: " + ok.error().message;
        return 1;
      }
      if (content_hash) *content_hash = value_content_hash(kResultKey, *result);
      return 0;
    }
  }
  if (a.output.empty()) {
    why = "SLUICE_OUTPUT is not set";
    return 2;
  }
  std::filesystem::create_directories(a.attempt_dir, ec);
  auto w = ArtifactWriter::create(a.output);
  Expected<void> ok = w ? w->put(kResultKey, *result) : tl::unexpected(w.error());
  if (ok) ok = w->commit();
  if (!ok) {
    why = "cannot write the result: " + ok.error().message;
    return 1;
  }
  if (content_hash) *content_hash = value_content_hash(kResultKey, *result);
  return 0;
}

int run_worker(const char* function, const char* arguments) {
  end_worker_preamble();
  auto env = [](const std::string& name) {
    const char* v = std::getenv(name.c_str());
    return std::string(v ? v : "");
  };
  FunctionAttempt a;
  a.function = function;
  a.arguments = arguments;
  a.run_id = env("SLUICE_RUN_ID");
  a.task = env("SLUICE_TASK");
  a.attempt = static_cast<std::uint32_t>(std::strtoul(env("SLUICE_ATTEMPT").c_str(), nullptr, 10));
  a.attempt_dir = env("SLUICE_ATTEMPT_DIR");
  a.output = env("SLUICE_OUTPUT");
  a.results = env("SLUICE_RESULTS");
  a.input = env;
  a.stdout_is_log = true;
  std::string why;
  const int code = execute_function_attempt(a, why);
  std::cout.flush();
  std::fflush(stdout);
  if (code != 0) std::fprintf(stderr, "sluice worker: %s\n", why.c_str());
  return code;
}

}  // namespace sluice
