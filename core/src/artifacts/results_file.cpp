#include "sluice/engine/results_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sluice/engine/hdf5_codec.hpp"
#include "sluice/function_args.hpp"
#include "sluice/value_json.hpp"

namespace sluice {
namespace {

bool valid_key(std::string_view key) {
  if (key.empty()) return false;
  for (char c : key)
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\0') return false;
  return true;
}

// The next line of `text` from `pos` (without its '\n' or a '\r' before it); false at
// the end.
bool next_line(std::string_view text, std::size_t& pos, std::string_view& line) {
  if (pos >= text.size()) return false;
  std::size_t end = text.find('\n', pos);
  if (end == std::string_view::npos) end = text.size();
  line = text.substr(pos, end - pos);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  pos = end + 1;
  return true;
}

Expected<std::string> read_small_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return make_error(errno == ELOOP ? ErrorCode::kInvalidInput : ErrorCode::kIo,
                      "cannot read " + path + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(ErrorCode::kInvalidInput, path + " is not a regular file");
  }
  if (static_cast<std::size_t>(st.st_size) > kMaxResultsBytes) {
    ::close(fd);
    return make_error(ErrorCode::kInvalidInput,
                      path + " holds " + std::to_string(st.st_size) + " bytes, more than the " +
                          std::to_string(kMaxResultsBytes >> 20) +
                          " MiB a results file may; write large data with `sluice put KEY "
                          "--file` or HDF5");
  }
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  text.resize(got);
  return text;
}

}  // namespace

Expected<Map> parse_results(std::string_view text, const std::string& name) {
  Map values;
  std::size_t pos = 0, line_no = 0;
  std::string_view line;
  auto bad = [&](std::size_t at, const std::string& what) {
    return make_error(ErrorCode::kInvalidInput, name + ":" + std::to_string(at) + ": " + what);
  };
  while (next_line(text, pos, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    if (line.front() == '=') {  // =KEY BASE64: a value already typed (format_packed_line)
      const std::size_t space = line.find(' ');
      const std::string_view key = line.substr(1, space == std::string_view::npos ? 0 : space - 1);
      if (!valid_key(key)) return bad(line_no, "'" + std::string(key) + "' is not a key");
      auto bytes = base64_decode(line.substr(space + 1));
      Expected<Value> value = make_error(ErrorCode::kInvalidInput, "bad base64");
      if (bytes) value = value_from_bytes(*bytes);
      if (!value)
        return bad(line_no, "a typed value that does not decode: " + value.error().message);
      values.insert_or_assign(std::string(key), std::move(*value));
      continue;
    }
    const std::size_t eq = line.find('=');
    const std::size_t heredoc = line.find("<<");
    if (heredoc != std::string_view::npos && (eq == std::string_view::npos || heredoc < eq)) {
      const std::string_view key = line.substr(0, heredoc);
      const std::string_view delim = line.substr(heredoc + 2);
      if (!valid_key(key)) return bad(line_no, "'" + std::string(key) + "' is not a key");
      if (delim.empty()) return bad(line_no, "KEY<<DELIM needs a delimiter after <<");
      const std::size_t opened = line_no;
      std::string body;
      bool closed = false;
      bool first = true;
      while (next_line(text, pos, line)) {
        ++line_no;
        if (line == delim) {
          closed = true;
          break;
        }
        if (!first) body += '\n';
        body.append(line);
        first = false;
      }
      if (!closed)
        return bad(opened, "'" + std::string(key) + "<<" + std::string(delim) +
                               "' is never closed by a line holding only " + std::string(delim));
      values.insert_or_assign(std::string(key), parse_file_contents(body));
      continue;
    }
    if (eq == std::string_view::npos)
      return bad(line_no,
                 "expected KEY=VALUE or KEY<<DELIM, got '" + std::string(line.substr(0, 80)) + "'");
    const std::string_view key = line.substr(0, eq);
    if (!valid_key(key)) return bad(line_no, "'" + std::string(key) + "' is not a key");
    auto value = parse_typed(std::string(line.substr(eq + 1)), "auto");
    if (!value) return bad(line_no, value.error().message);
    values.insert_or_assign(std::string(key), std::move(*value));
  }
  return values;
}

std::string format_packed_line(const std::string& key, const Value& value) {
  std::string bytes;
  append_value_bytes(value, bytes);
  return "=" + key + " " + base64_encode(bytes) + "\n";
}

Expected<void> append_packed_value(const std::string& results_path, const std::string& key,
                                   const Value& value) {
  const std::string line = format_packed_line(key, value);
  const int fd =
      ::open(results_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0)
    return make_error(ErrorCode::kIo, "cannot open " + results_path + ": " + std::strerror(errno));
  // One write: lines from concurrent writers do not interleave.
  const ssize_t n = ::write(fd, line.data(), line.size());
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(line.size()))
    return make_error(ErrorCode::kIo, "cannot append to " + results_path + ": " +
                                          std::strerror(n < 0 ? err : ENOSPC));
  return {};
}

Expected<Map> read_results(const std::string& path) {
  auto text = read_small_file(path);
  if (!text) return tl::unexpected(text.error());
  return parse_results(*text, path);
}

Expected<void> merge_into_artifact(const Map& results, const std::string& artifact_path) {
  Map values, attributes;
  if (::access(artifact_path.c_str(), F_OK) == 0) {
    auto reader = ArtifactReader::open(artifact_path);
    if (!reader) return tl::unexpected(reader.error());
    auto all = reader->get_all();
    if (!all) return tl::unexpected(all.error());
    values = std::move(*all);
    if (auto attrs = reader->attributes(); attrs) attributes = std::move(*attrs);
  }
  for (const auto& [k, v] : results) values.insert_or_assign(k, v);
  auto writer = ArtifactWriter::create(artifact_path);
  if (!writer) return tl::unexpected(writer.error());
  for (const auto& [k, v] : values) {
    if (auto r = writer->put(k, v); !r)
      return make_error(r.error().code, "key '" + k + "': " + r.error().message);
  }
  for (const auto& [k, v] : attributes) (void)writer->set_attribute(k, v);
  return writer->commit();
}

}  // namespace sluice
