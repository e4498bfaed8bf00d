#include "sluice/config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <toml++/toml.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sluice/engine/file_modes.hpp"
#include "store/home_check.hpp"

namespace sluice {
namespace {

bool read_text(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

std::string scalar(const toml::node& n) {
  if (auto s = n.value<std::string>()) return *s;
  if (auto i = n.value<std::int64_t>()) return std::to_string(*i);
  if (auto b = n.value<bool>()) return *b ? "true" : "false";
  if (auto d = n.value<double>()) {
    std::ostringstream o;
    o << *d;
    return o.str();
  }
  if (auto a = n.as_array()) {
    std::string joined;
    for (const auto& e : *a) joined += (joined.empty() ? "" : ",") + scalar(e);
    return joined;
  }
  return "";
}

constexpr const char* kBuiltins[] = {"inproc", "local"};

// The directories find() searches, in order: HOME/configs, then ~/.config/sluice; with
// `name`, the file NAME.toml in each.
std::vector<std::string> config_places(const std::string& home, const std::string& name = "") {
  const std::string file = name.empty() ? "" : "/" + name + ".toml";
  std::vector<std::string> places = {config_dir(home) + file};
  if (const char* h = std::getenv("HOME"); h && *h)
    places.push_back(std::string(h) + "/.config/sluice" + file);
  return places;
}

}  // namespace

std::string sluice_home(const std::string& flag) {
  std::string h = flag;
  if (h.empty())
    if (const char* e = std::getenv("SLUICE_HOME"); e && *e) h = e;
  if (h.empty()) h = ".sluice";
  std::error_code ec;
  auto abs = std::filesystem::absolute(h, ec);
  return ec ? h : abs.lexically_normal().string();
}

std::string config_dir(const std::string& home) {
  return sluice_home(home) + "/configs";
}

bool is_config_name(const std::string& name) {
  return !name.empty() && name[0] != '.' &&
         name.find_first_not_of(
             "abcdefghijklmnopqrstuvwxyz"
             "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
             "0123456789_-.") == std::string::npos;
}

Expected<Config> Config::builtin(const std::string& name) {
  if (std::find(std::begin(kBuiltins), std::end(kBuiltins), name) != std::end(kBuiltins))
    return Config{name, name, {}};
  return make_error(ErrorCode::kNotFound, "no built-in configuration '" + name + "'");
}

Expected<Config> Config::parse(const std::string& name, const std::string& text) {
  toml::table root;
  try {
    root = toml::parse(text);
  } catch (const toml::parse_error& e) {
    return make_error(ErrorCode::kInvalidInput,
                      "configuration '" + name + "': " + std::string(e.description()));
  }
  Config c;
  c.name = name;
  for (auto&& [k, v] : root) {
    const std::string key(k.str());
    if (key == "backend") {
      c.backend = v.value_or(std::string());
    } else if (key == "name") {
      continue;
    } else if (const toml::table* t = v.as_table()) {
      for (auto&& [k2, v2] : *t) c.options[std::string(k2.str())] = scalar(v2);
    } else {
      c.options[key] = scalar(v);
    }
  }
  if (c.backend.empty())
    return make_error(ErrorCode::kInvalidInput, "configuration '" + name + "' names no backend");
  return c;
}

Expected<Config> Config::find(const std::string& name, const std::string& home) {
  const std::vector<std::string> places = config_places(home, name);
  for (const auto& p : places) {
    std::string text;
    if (read_text(p, text)) return parse(name, text);
  }
  if (auto b = builtin(name)) return b;
  std::string where;
  for (const auto& p : places) where += (where.empty() ? "" : ", ") + p;
  return make_error(
      ErrorCode::kNotFound,
      "no configuration '" + name + "' (built in: inproc, local; looked in " + where + ")");
}

Config Config::load(const std::string& name, const std::string& home) {
  auto c = find(name, home);
  if (!c) throw std::move(c).error();
  return std::move(*c);
}

Expected<void> Config::save(const std::string& home) const {
  // The same checks as a run's: a configuration written through a link another user
  // planted in the home would land where they chose.
  auto safe = store_detail::prepare_safe_home(sluice_home(home), /*make_runs=*/false);
  if (!safe) return tl::unexpected(safe.error());
  const std::string dir = config_dir(home);
  if (::mkdir(dir.c_str(), file_modes().dir) != 0 && errno != EEXIST)
    return make_error(ErrorCode::kIo, "cannot create " + dir + ": " + std::strerror(errno));
  toml::table root;
  root.insert("backend", backend);
  for (const auto& [k, v] : options) root.insert(k, v);
  std::ostringstream text;
  text << root << "\n";
  const std::string path = dir + "/" + name + ".toml";
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());  // a stale one, or a link: unlink never follows it
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
  if (fd < 0)
    return make_error(ErrorCode::kIo, "cannot write " + tmp + ": " + std::strerror(errno));
  const std::string body = text.str();
  const bool written = ::write(fd, body.data(), body.size()) == static_cast<ssize_t>(body.size());
  ::close(fd);
  if (!written) return make_error(ErrorCode::kIo, "cannot write " + tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return make_error(ErrorCode::kIo, "cannot write " + path + ": " + std::strerror(errno));
  return {};
}

Expected<void> Config::remove(const std::string& name, const std::string& home) {
  const std::string path = config_dir(home) + "/" + name + ".toml";
  if (::unlink(path.c_str()) != 0)
    return make_error(ErrorCode::kNotFound, "no saved configuration '" + name + "' (" + path + ")");
  return {};
}

std::vector<std::string> Config::list(const std::string& home) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(config_dir(home), ec))
    if (e.path().extension() == ".toml") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string Config::source(const std::string& name, const std::string& home) {
  std::error_code ec;
  for (const auto& p : config_places(home, name))
    if (std::filesystem::is_regular_file(p, ec)) return p;
  return builtin(name) ? "built-in" : "";
}

std::vector<std::string> Config::list_all(const std::string& home) {
  std::vector<std::string> names(std::begin(kBuiltins), std::end(kBuiltins));
  for (const auto& dir : config_places(home)) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec))
      if (e.path().extension() == ".toml" && is_config_name(e.path().stem().string()))
        names.push_back(e.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

}  // namespace sluice
