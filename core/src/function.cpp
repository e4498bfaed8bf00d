#include "sluice/function.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>

#include "sluice/artifacts.hpp"
#include "sluice/children.hpp"
#include "sluice/function_args.hpp"
#include "sluice/hdf5_codec.hpp"
#include "sluice/sdk_main.hpp"

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
  try {
    return f.invoke(ctx, args);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kBackend, f.key() + ": " + e.what());
  } catch (...) {
    return make_error(ErrorCode::kBackend, f.key() + ": unknown exception");
  }
}

std::string TaskContext::add_child(const ChildRequest& child) {
  std::error_code ec;  // in-process attempts make their directory on first use
  std::filesystem::create_directories(attempt_dir, ec);
  auto text = child_request_text(child);
  auto path = write_child_request(attempt_dir, text);
  if (!path) throw std::runtime_error(path.error().message);
  return *path;
}

int run_worker(const char* function, const char* arguments) {
  const FunctionInfo* f = find_function(function);
  if (!f) {
    std::fprintf(stderr, "sluice worker: no function registered as '%s' in this program\n",
                 function);
    return 2;
  }
  auto args = decode_arguments(arguments);
  if (!args) {
    std::fprintf(stderr, "sluice worker: %s\n", args.error().message.c_str());
    return 2;
  }
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v ? v : "");
  };
  // A parent that returned nothing left no artifact: its result is null.
  auto parent_result = [&](const ArgumentRef& r) -> Expected<Value> {
    const std::string path = env(input_env_name(r.parent).c_str());
    if (path.empty()) return Value();
    auto reader = ArtifactReader::open(path);
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
  for (Argument& a : *args) {
    if (a.kind == Argument::Kind::kValue) {
      values.push_back(std::move(a.value));
      continue;
    }
    List gathered;
    for (const ArgumentRef& r : a.refs) {
      auto v = parent_result(r);
      if (!v) {
        std::fprintf(stderr, "sluice worker: input from '%s': %s\n", r.parent.c_str(),
                     v.error().message.c_str());
        return 2;
      }
      gathered.push_back(std::move(*v));
    }
    if (a.kind == Argument::Kind::kResult) {
      values.push_back(gathered.empty() ? Value() : std::move(gathered.front()));
    } else {
      values.push_back(Value(std::move(gathered)));
    }
  }
  TaskContext ctx;
  ctx.run_id = env("SLUICE_RUN_ID");
  ctx.task = env("SLUICE_TASK");
  ctx.attempt = static_cast<std::uint32_t>(std::strtoul(env("SLUICE_ATTEMPT").c_str(), nullptr, 10));
  ctx.attempt_dir = env("SLUICE_ATTEMPT_DIR");
  auto result = invoke_function(*f, ctx, values);
  std::fflush(stdout);
  if (!result) {
    std::fprintf(stderr, "sluice worker: task failed: %s\n", result.error().message.c_str());
    return 1;
  }
  if (f->returns_void) return 0;
  const std::string out = env("SLUICE_OUTPUT");
  if (out.empty()) {
    std::fprintf(stderr, "sluice worker: SLUICE_OUTPUT is not set\n");
    return 2;
  }
  auto w = ArtifactWriter::create(out);
  Expected<void> ok = w ? w->put(kResultKey, *result) : tl::unexpected(w.error());
  if (ok) ok = w->commit();
  if (!ok) {
    std::fprintf(stderr, "sluice worker: cannot write the result: %s\n", ok.error().message.c_str());
    return 1;
  }
  return 0;
}

}  // namespace sluice
