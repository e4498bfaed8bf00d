// Child requests: the files through which a running attempt adds tasks to its run.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <toml++/toml.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "loader/loader_internal.hpp"
#include "sluice/duration.hpp"
#include "sluice/engine/child_request.hpp"

namespace sluice {
namespace {

constexpr const char* kDir = kChildRequestDir;
constexpr const char* kHint = "/.next";  // the next free sequence number (a hint only)
constexpr std::size_t kSeqDigits = 8;

bool is_request_name(const char* name) {
  const std::size_t n = std::strlen(name);
  if (n != kSeqDigits + 5 || std::strcmp(name + kSeqDigits, ".toml") != 0) return false;
  return std::all_of(name, name + kSeqDigits, [](char c) { return c >= '0' && c <= '9'; });
}

std::string sequence_name(unsigned long seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*lu.toml", static_cast<int>(kSeqDigits), seq);
  return buf;
}

bool write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// A file written whole under a temporary name; `path` names it while it lives.
class TempFile {
 public:
  ~TempFile() {
    if (!path.empty()) ::unlink(path.c_str());
  }
  bool create(const std::string& dir, std::string_view text) {
    std::random_device rd;
    path = dir + "/.tmp." + std::to_string(::getpid()) + "." + std::to_string(rd());
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      path.clear();
      return false;
    }
    const bool ok = write_all(fd, text);
    const int saved = errno;
    ::close(fd);
    errno = saved;
    return ok;
  }
  std::string path;
};

unsigned long read_hint(const std::string& dir) {
  std::ifstream in(dir + kHint);
  unsigned long seq = 0;
  if (in >> seq) return std::max(seq, 1ul);
  return 1;
}

void write_hint(const std::string& dir, unsigned long next) {
  TempFile tmp;
  if (tmp.create(dir, std::to_string(next) + "\n") &&
      ::rename(tmp.path.c_str(), (dir + kHint).c_str()) == 0)
    tmp.path.clear();
}

Error io_error(const std::string& what) {
  return Error{ErrorCode::kIo, what + ": " + std::strerror(errno)};
}

}  // namespace

std::string child_request_text(const ChildRequest& child) {
  const TaskSpec& s = child.spec;
  toml::table task;
  if (!s.shell.empty()) {
    task.insert("shell", s.shell);
  } else {
    toml::array argv;
    for (const auto& a : s.command) argv.push_back(a);
    task.insert("command", std::move(argv));
  }
  if (!child.before.empty()) task.insert("before", child.before);
  if (!s.version.empty()) task.insert("version", s.version);
  task.insert("cpus", s.cpus);
  task.insert("gpus", s.gpus);
  if (s.memory_mib > 0) task.insert("memory", std::to_string(s.memory_mib) + "M");
  if (!s.executor.empty()) task.insert("executor", s.executor);
  task.insert("retries", s.retries);
  if (s.max_exec_time.count() > 0)
    task.insert("max_exec_time", std::to_string(s.max_exec_time.count()) + "ms");
  if (s.max_wait_time.count() > 0)
    task.insert("max_wait_time", std::to_string(s.max_wait_time.count()) + "ms");
  if (!s.workdir.empty()) task.insert("workdir", s.workdir);
  if (!s.cache) task.insert("cache", false);
  if (!s.outputs.empty()) {
    toml::array outs;
    for (const auto& o : s.outputs) outs.push_back(o);
    task.insert("outputs", std::move(outs));
  }
  if (!s.env.empty()) {
    toml::table env;
    for (const auto& [k, v] : s.env) env.insert_or_assign(k, v);
    task.insert("env", std::move(env));
  }
  toml::table tasks;
  tasks.insert(s.name, std::move(task));
  toml::table doc;
  doc.insert("tasks", std::move(tasks));
  std::ostringstream out;
  out << doc << "\n";
  return out.str();
}

tl::expected<std::vector<ChildRequest>, Diagnostics> parse_child_requests(
    std::string_view text, const std::string& display_name, const std::string& base_dir) {
  using namespace loader_detail;
  Reporter r(display_name);
  Workflow wf;
  wf.base_dir = base_dir;
  std::optional<Document> doc = read_document(text, display_name, r, DocumentKind::kChildRequest);
  if (doc) build_tasks(*doc, wf, r);
  if (!r.diagnostics().empty()) return tl::unexpected<Diagnostics>(r.take());
  std::vector<ChildRequest> out;
  out.reserve(wf.tasks.size());
  for (const RawTask& raw : doc->tasks) {
    const std::string before = raw.fields.other().before.value.value_or("");
    for (TaskId id : raw.ids) out.push_back({std::move(wf.tasks[id]), before});
  }
  return out;
}

Expected<std::string> write_child_request(const std::string& attempt_dir, std::string_view text) {
  const std::string dir = attempt_dir + kDir;
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return tl::unexpected(io_error("cannot create " + dir));
  TempFile tmp;
  if (!tmp.create(dir, text)) return tl::unexpected(io_error("cannot write in " + dir));
  // link() fails with EEXIST when another writer took the number: take the next one.
  // The hint makes this O(1) for the usual single writer.
  for (unsigned long seq = read_hint(dir);; ++seq) {
    std::string path = dir + "/" + sequence_name(seq);
    if (::link(tmp.path.c_str(), path.c_str()) == 0) {
      write_hint(dir, seq + 1);
      return path;
    }
    if (errno != EEXIST) return tl::unexpected(io_error("cannot create " + path));
  }
}

Expected<std::vector<std::string>> list_child_requests(const std::string& attempt_dir) {
  std::vector<std::string> out;
  const std::string dir = attempt_dir + kDir;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return out;
    return tl::unexpected(io_error("cannot read " + dir));
  }
  while (const dirent* e = ::readdir(d))
    if (is_request_name(e->d_name)) out.push_back(dir + "/" + e->d_name);
  ::closedir(d);
  std::sort(out.begin(), out.end());  // fixed-width numbers: name order is write order
  return out;
}

Expected<std::string> add_child(const ChildRequest& child) {
  const char* attempt_dir = std::getenv("SLUICE_ATTEMPT_DIR");
  if (attempt_dir == nullptr || *attempt_dir == '\0')
    return make_error(ErrorCode::kInvalidInput,
                      "not inside a Sluice attempt (SLUICE_ATTEMPT_DIR is not set)");
  const std::string text = child_request_text(child);
  std::string base = child.spec.workdir;
  if (base.empty()) {
    char cwd[4096];
    base = ::getcwd(cwd, sizeof cwd) ? cwd : "/";
  }
  auto parsed = parse_child_requests(text, "child '" + child.spec.name + "'", base);
  if (!parsed) return make_error(ErrorCode::kInvalidInput, parsed.error().front().format());
  return write_child_request(attempt_dir, text);
}

}  // namespace sluice
