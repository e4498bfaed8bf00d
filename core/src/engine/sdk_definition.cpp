#include "sluice/engine/sdk_definition.hpp"
#include "sluice/engine/host_info.hpp"

#include <unistd.h>

#include <toml++/toml.h>
#include <algorithm>
#include <cstdio>

namespace sluice {
namespace {

constexpr std::string_view kMarker = "# sluice-sdk";

class Fnv1a {
 public:
  void str(std::string_view s) {
    num(static_cast<std::int64_t>(s.size()));
    for (unsigned char c : s) {
      h_ ^= c;
      h_ *= 1099511628211ull;
    }
  }
  void num(std::int64_t n) {
    for (int i = 0; i < 8; ++i) {
      h_ ^= static_cast<unsigned char>(n >> (8 * i));
      h_ *= 1099511628211ull;
    }
  }
  std::string hex() const {
    char buf[17];
    std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h_));
    return buf;
  }

 private:
  std::uint64_t h_ = 14695981039346656037ull;
};

}  // namespace

bool is_sdk_definition(std::string_view text) {
  return text.substr(0, kMarker.size()) == kMarker;
}

std::vector<std::string> worker_command(const std::string& program, const std::string& function,
                                        const std::string& arguments) {
  return {program, "__sluice_worker", function, arguments};
}

std::string this_program_name() {
  const std::string path = self_executable();
  if (path.empty()) return "sluice-app";
  return path.substr(path.rfind('/') + 1);
}

// The program's name is left out: the same definition built into another binary is the
// same workflow.
std::string sdk_content_hash(const Workflow& wf) {
  Fnv1a h;
  h.str("sluice-sdk-workflow-v1");
  h.str(wf.project);
  h.str(wf.name);
  h.num(static_cast<std::int64_t>(wf.tasks.size()));
  for (const TaskSpec& t : wf.tasks) {
    h.str(t.name);
    h.str(t.function);
    h.str(t.arguments);
    h.num(static_cast<std::int64_t>(t.after.size()));
    for (TaskId p : t.after) h.num(p);
    h.num(t.cpus);
    h.num(t.gpus);
    h.num(t.memory_mib);
    h.str(t.executor);
    h.num(t.retries);
    h.num(t.max_exec_time.count());
    h.num(t.max_wait_time.count());
  }
  return h.hex();
}

// Written directly rather than through a toml::table: a tree of every task (a table of
// ~10 nodes each) cost ~1.5 KiB and a dozen allocations per task, and the stream copied
// the text twice, which set the peak memory of a large sweep. load_sdk_definition()
// reads it back with the TOML parser.
std::string sdk_definition_text(const Workflow& wf) {
  std::string out;
  out.reserve(256 + wf.tasks.size() * 160);
  // A TOML basic string: quotes, backslashes and control characters escaped.
  auto quoted = [&out](std::string_view v) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    out.push_back('"');
    for (const char ch : v) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == '"' || c == '\\') {
        out.push_back('\\');
        out.push_back(ch);
      } else if (c < 0x20 || c == 0x7f) {
        out.append("\\u00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xf]);
      } else {
        out.push_back(ch);
      }
    }
    out.push_back('"');
  };
  auto key_str = [&](std::string_view key, std::string_view v) {
    out.append(key).append(" = ");
    quoted(v);
    out.push_back('\n');
  };
  auto key_int = [&](std::string_view key, std::int64_t v) {
    out.append(key).append(" = ").append(std::to_string(v)).push_back('\n');
  };
  out.append(kMarker).append(
      ": a workflow defined in C++ (sluice/flow.hpp); its tasks call registered functions\n\n");
  out.append("[workflow]\n");
  key_str("name", wf.name);
  key_str("project", wf.project);
  key_str("content_hash", wf.content_hash);
  key_str("base_dir", wf.base_dir);
  for (const TaskSpec& t : wf.tasks) {
    out.append("\n[[task]]\n");
    key_str("name", t.name);
    key_str("group", t.group);
    key_str("function", t.function);
    key_str("version", t.version);
    key_str("program", t.command.empty() ? std::string_view() : t.command.front());
    if (!t.arguments.empty()) key_str("arguments", t.arguments);
    out.append("after = [");
    for (std::size_t i = 0; i < t.after.size(); ++i) {
      if (i) out.append(", ");
      quoted(wf.tasks[t.after[i]].name);
    }
    out.append("]\n");
    key_int("cpus", t.cpus);
    key_int("gpus", t.gpus);
    if (t.memory_mib) key_int("memory_mib", t.memory_mib);
    if (!t.executor.empty()) key_str("executor", t.executor);
    if (t.retries) key_int("retries", t.retries);
    if (t.max_exec_time.count()) key_int("max_exec_time_ms", t.max_exec_time.count());
    if (t.max_wait_time.count()) key_int("max_wait_time_ms", t.max_wait_time.count());
  }
  return out;
}

Expected<Workflow> load_sdk_definition(std::string_view text, const std::string& base_dir,
                                       const std::string& program) {
  if (!is_sdk_definition(text))
    return make_error(ErrorCode::kInvalidInput, "not a C++ (SDK) workflow definition");
  toml::table root;
  try {
    root = toml::parse(text);
  } catch (const toml::parse_error& e) {
    return make_error(ErrorCode::kInvalidInput, std::string("damaged SDK workflow definition: ") +
                                                    std::string(e.description()));
  }
  auto bad = [](const std::string& why) {
    return make_error(ErrorCode::kInvalidInput, "damaged SDK workflow definition: " + why);
  };
  Workflow wf;
  wf.name = root["workflow"]["name"].value_or(std::string());
  wf.project = root["workflow"]["project"].value_or(std::string());
  wf.base_dir = root["workflow"]["base_dir"].value_or(base_dir);
  if (wf.name.empty()) return bad("no workflow name");
  const toml::array* tasks = root["task"].as_array();
  if (tasks) {
    for (const toml::node& n : *tasks) {
      const toml::table* e = n.as_table();
      if (!e) return bad("a task is not a table");
      TaskSpec t;
      t.name = (*e)["name"].value_or(std::string());
      if (t.name.empty() || wf.index.count(t.name)) return bad("missing or duplicate task name");
      t.group = (*e)["group"].value_or(std::string());
      t.function = (*e)["function"].value_or(std::string());
      t.version = (*e)["version"].value_or(std::string("1"));
      t.arguments = (*e)["arguments"].value_or(std::string());
      const std::string prog = program.empty() ? (*e)["program"].value_or(std::string()) : program;
      t.command = worker_command(prog, t.function, t.arguments);
      if (const toml::array* after = (*e)["after"].as_array()) {
        for (const toml::node& p : *after) {
          auto it = wf.index.find(p.value_or(std::string()));
          if (it == wf.index.end()) return bad("task '" + t.name + "' names an unknown parent");
          t.after.push_back(it->second);
        }
      }
      t.cpus = static_cast<int>((*e)["cpus"].value_or(std::int64_t{1}));
      t.gpus = static_cast<int>((*e)["gpus"].value_or(std::int64_t{0}));
      t.memory_mib = (*e)["memory_mib"].value_or(std::int64_t{0});
      t.executor = (*e)["executor"].value_or(std::string());
      t.retries = static_cast<int>((*e)["retries"].value_or(std::int64_t{0}));
      t.max_exec_time = Millis((*e)["max_exec_time_ms"].value_or(std::int64_t{0}));
      t.max_wait_time = Millis((*e)["max_wait_time_ms"].value_or(std::int64_t{0}));
      t.workdir = wf.base_dir;
      wf.index.emplace(t.name, static_cast<TaskId>(wf.tasks.size()));
      wf.tasks.push_back(std::move(t));
    }
  }
  wf.content_hash = sdk_content_hash(wf);
  wf.text = std::string(text);
  return wf;
}

}  // namespace sluice
