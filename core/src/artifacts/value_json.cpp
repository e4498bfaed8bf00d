#include "sluice/value_json.hpp"

#include <charconv>
#include <cstdlib>
#include <sstream>

#include "sluice/engine/artifacts.hpp"

namespace sluice {
namespace {

using nlohmann::json;

template <class T>
json array_json(std::span<const T> data, const std::vector<std::uint64_t>& shape, std::size_t dim,
                std::size_t& pos) {
  json out = json::array();
  if (shape.empty()) return data.empty() ? json() : json(data[pos++]);
  for (std::uint64_t i = 0; i < shape[dim]; ++i) {
    if (dim + 1 == shape.size())
      out.push_back(data[pos++]);
    else
      out.push_back(array_json(data, shape, dim + 1, pos));
  }
  return out;
}

json nd_json(const NdArray& a) {
  std::size_t pos = 0;
  switch (a.dtype()) {
    case DType::kUInt8:
      return array_json(a.values<std::uint8_t>(), a.shape(), 0, pos);
    case DType::kInt32:
      return array_json(a.values<std::int32_t>(), a.shape(), 0, pos);
    case DType::kInt64:
      return array_json(a.values<std::int64_t>(), a.shape(), 0, pos);
    case DType::kFloat32:
      return array_json(a.values<float>(), a.shape(), 0, pos);
    case DType::kFloat64:
      return array_json(a.values<double>(), a.shape(), 0, pos);
  }
  return nullptr;
}

// Shape of a rectangular nested array of numbers, or false.
bool numeric_shape(const json& j, std::vector<std::uint64_t>& shape, std::size_t dim,
                   bool& all_int) {
  if (!j.is_array()) {
    if (!j.is_number()) return false;
    if (!j.is_number_integer()) all_int = false;
    return dim == shape.size();
  }
  if (dim == shape.size()) shape.push_back(j.size());
  if (shape[dim] != j.size()) return false;
  if (j.empty()) return dim + 1 == shape.size();
  for (const auto& e : j)
    if (!numeric_shape(e, shape, dim + 1, all_int)) return false;
  return true;
}

template <class T>
void flatten(const json& j, std::vector<T>& out) {
  if (j.is_array())
    for (const auto& e : j) flatten(e, out);
  else
    out.push_back(j.get<T>());
}

bool parse_int(const std::string& s, std::int64_t& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

bool parse_double(const std::string& s, double& v) {
  if (s.empty()) return false;
  char* end = nullptr;
  v = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && !std::isspace(static_cast<unsigned char>(s[0]));
}

}  // namespace

json to_json(const Value& v) {
  switch (v.type()) {
    case Value::Type::kNull:
      return nullptr;
    case Value::Type::kBool:
      return v.get<bool>();
    case Value::Type::kInt:
      return v.get<std::int64_t>();
    case Value::Type::kDouble:
      return v.get<double>();
    case Value::Type::kString:
      return v.get<std::string>();
    case Value::Type::kArray:
      return nd_json(v.get<NdArray>());
    case Value::Type::kList: {
      json out = json::array();
      for (const auto& e : v.get<List>()) out.push_back(to_json(e));
      return out;
    }
    case Value::Type::kMap: {
      json out = json::object();
      for (const auto& [k, e] : v.get<Map>()) out[k] = to_json(e);
      return out;
    }
  }
  return nullptr;
}

Value from_json(const json& j) {
  if (j.is_null()) return Value();
  if (j.is_boolean()) return Value(j.get<bool>());
  if (j.is_number_integer()) return Value(j.get<std::int64_t>());
  if (j.is_number()) return Value(j.get<double>());
  if (j.is_string()) return Value(j.get<std::string>());
  if (j.is_object()) {
    Map m;
    for (auto it = j.begin(); it != j.end(); ++it) m.insert_or_assign(it.key(), from_json(*it));
    return Value(std::move(m));
  }
  std::vector<std::uint64_t> shape;
  bool all_int = true;
  if (!j.empty() && numeric_shape(j, shape, 0, all_int)) {
    if (all_int) {
      std::vector<std::int64_t> data;
      flatten(j, data);
      return Value(NdArray(std::move(data), shape));
    }
    std::vector<double> data;
    flatten(j, data);
    return Value(NdArray(std::move(data), shape));
  }
  List l;
  for (const auto& e : j) l.push_back(from_json(e));
  return Value(std::move(l));
}

Expected<Value> parse_typed(const std::string& text, const std::string& type) {
  std::int64_t i = 0;
  double d = 0;
  auto bad = [&](const char* what) -> Expected<Value> {
    return make_error(ErrorCode::kInvalidInput, "'" + text + "' is not " + what);
  };
  if (type == "string") return Value(text);
  if (type == "int") return parse_int(text, i) ? Value(i) : bad("an integer");
  if (type == "float") return parse_double(text, d) ? Value(d) : bad("a number");
  if (type == "bool") {
    if (text == "true" || text == "1") return Value(true);
    if (text == "false" || text == "0") return Value(false);
    return bad("true or false");
  }
  if (type == "json") {
    auto j = json::parse(text, nullptr, false);
    return j.is_discarded() ? bad("valid JSON") : Expected<Value>(from_json(j));
  }
  if (type != "auto")
    return make_error(ErrorCode::kInvalidInput,
                      "unknown --type '" + type + "' (auto, int, float, bool, string, json)");
  if (text == "true") return Value(true);
  if (text == "false") return Value(false);
  if (parse_int(text, i)) return Value(i);
  if (parse_double(text, d)) return Value(d);
  if (!text.empty() && (text[0] == '[' || text[0] == '{')) {
    auto j = json::parse(text, nullptr, false);
    if (!j.is_discarded()) return from_json(j);
  }
  return Value(text);
}

Value parse_file_contents(const std::string& text) {
  std::istringstream lines(text);
  std::string line;
  std::vector<double> values;
  std::vector<std::int64_t> ints;
  bool all_int = true;
  std::size_t rows = 0, cols = 0;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string f;
    std::size_t n = 0;
    while (fields >> f) {
      double d;
      std::int64_t i;
      if (parse_int(f, i)) {
        ints.push_back(i);
        d = static_cast<double>(i);
      } else if (parse_double(f, d)) {
        all_int = false;
      } else {
        return Value(text);
      }
      values.push_back(d);
      ++n;
    }
    if (n == 0) continue;
    if (rows > 0 && n != cols) return Value(text);
    cols = n;
    ++rows;
  }
  if (rows == 0) return Value(text);
  std::vector<std::uint64_t> shape =
      cols == 1 ? std::vector<std::uint64_t>{rows} : std::vector<std::uint64_t>{rows, cols};
  if (all_int) return Value(NdArray(std::move(ints), shape));
  return Value(NdArray(std::move(values), shape));
}

std::string to_text(const Value& v) {
  if (auto s = scalar_text(v)) return *s;
  const auto* a = v.get_if<NdArray>();
  if (!a || a->rank() == 0 || a->rank() > 2) return to_json(v).dump();
  // Rank 1: one line; rank 2: one line per row. Elements print as scalars do.
  const std::uint64_t cols = a->rank() == 1 ? a->size() : a->shape()[1];
  std::string out;
  auto print = [&](auto values) {
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (i > 0) out += (cols > 0 && i % cols == 0) ? '\n' : ' ';
      out += *scalar_text(Value(values[i]));
    }
  };
  switch (a->dtype()) {
    case DType::kUInt8:
      print(a->values<std::uint8_t>());
      break;
    case DType::kInt32:
      print(a->values<std::int32_t>());
      break;
    case DType::kInt64:
      print(a->values<std::int64_t>());
      break;
    case DType::kFloat32:
      print(a->values<float>());
      break;
    case DType::kFloat64:
      print(a->values<double>());
      break;
  }
  return out;
}

}  // namespace sluice
