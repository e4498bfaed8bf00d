// Child requests: the files through which a running attempt adds tasks to its run.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>

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

// A TOML basic string: quotes, backslashes and control characters escaped; other bytes
// (UTF-8) as they are.
void append_toml_string(std::string& out, std::string_view s) {
  out += '"';
  std::size_t run = 0;  // start of the bytes not yet copied
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default: {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04X", c);
        out += buf;
      }
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

// A key: bare when TOML allows it, else quoted ("square.3" is one key, not two).
void append_toml_key(std::string& out, std::string_view k) {
  const bool bare = !k.empty() && std::all_of(k.begin(), k.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
  if (bare)
    out += k;
  else
    append_toml_string(out, k);
}

void append_toml_entry(std::string& out, const char* key, std::string_view value) {
  out += key;
  out += " = ";
  append_toml_string(out, value);
  out += '\n';
}

void append_toml_entry(std::string& out, const char* key, std::int64_t value) {
  out += key;
  out += " = ";
  out += std::to_string(value);
  out += '\n';
}

}  // namespace

std::string child_request_text(const ChildRequest& child) {
  // Written by hand, not through toml++'s tables and a stream: an orchestration writes
  // one per call, and building the table was two thirds of its own cost per call.
  const TaskSpec& s = child.spec;
  std::size_t size = 160 + 2 * s.name.size() + s.shell.size() + s.workdir.size();
  for (const auto& a : s.command) size += a.size() + 4;
  std::string out;
  out.reserve(size);
  out += "[tasks.";
  append_toml_key(out, s.name);
  out += "]\n";
  if (!s.shell.empty()) {
    append_toml_entry(out, "shell", s.shell);
  } else {
    out += "command = [";
    for (std::size_t i = 0; i < s.command.size(); ++i) {
      if (i > 0) out += ", ";
      append_toml_string(out, s.command[i]);
    }
    out += "]\n";
  }
  if (!child.before.empty()) append_toml_entry(out, "before", child.before);
  if (!s.version.empty()) append_toml_entry(out, "version", s.version);
  append_toml_entry(out, "cpus", s.cpus);
  append_toml_entry(out, "gpus", s.gpus);
  if (s.memory_mib > 0) append_toml_entry(out, "memory", std::to_string(s.memory_mib) + "M");
  if (!s.executor.empty()) append_toml_entry(out, "executor", s.executor);
  append_toml_entry(out, "retries", s.retries);
  if (s.max_exec_time.count() > 0)
    append_toml_entry(out, "max_exec_time", std::to_string(s.max_exec_time.count()) + "ms");
  if (s.max_wait_time.count() > 0)
    append_toml_entry(out, "max_wait_time", std::to_string(s.max_wait_time.count()) + "ms");
  if (!s.workdir.empty()) append_toml_entry(out, "workdir", s.workdir);
  if (!s.cache) out += "cache = false\n";
  if (!s.outputs.empty()) {
    out += "outputs = [";
    for (std::size_t i = 0; i < s.outputs.size(); ++i) {
      if (i > 0) out += ", ";
      append_toml_string(out, s.outputs[i]);
    }
    out += "]\n";
  }
  if (!s.env.empty()) {
    // A key written twice would be a TOML error: the last value wins, as it did when
    // the table was built with insert_or_assign().
    out += "\n[tasks.";
    append_toml_key(out, s.name);
    out += ".env]\n";
    for (std::size_t i = 0; i < s.env.size(); ++i) {
      bool later = false;
      for (std::size_t j = i + 1; j < s.env.size() && !later; ++j)
        later = s.env[j].first == s.env[i].first;
      if (later) continue;
      append_toml_key(out, s.env[i].first);
      out += " = ";
      append_toml_string(out, s.env[i].second);
      out += '\n';
    }
  }
  return out;
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
