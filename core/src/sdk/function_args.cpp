#include "sluice/function_args.hpp"

#include <cstring>

namespace sluice {
namespace {

// Byte format (host byte order: workers run the coordinator's binary on the same kind of
// machine): a type tag, then the payload; lengths and counts are uint64.
enum Tag : std::uint8_t { kNull, kBool, kInt, kDouble, kString, kArray, kList, kMap };

template <class T>
void put(std::string& out, T x) {
  out.append(reinterpret_cast<const char*>(&x), sizeof(T));
}
void put_str(std::string& out, std::string_view s) {
  put<std::uint64_t>(out, s.size());
  out.append(s);
}

struct Reader {
  std::string_view in;
  bool ok = true;
  template <class T>
  T get() {
    T x{};
    if (in.size() < sizeof(T)) {
      ok = false;
      return x;
    }
    std::memcpy(&x, in.data(), sizeof(T));
    in.remove_prefix(sizeof(T));
    return x;
  }
  std::string_view bytes(std::uint64_t n) {
    if (in.size() < n) {
      ok = false;
      return {};
    }
    auto s = in.substr(0, n);
    in.remove_prefix(n);
    return s;
  }
  std::string str() { return std::string(bytes(get<std::uint64_t>())); }

  Value value(int depth = 0) {
    if (depth > 200) {
      ok = false;
      return {};
    }
    switch (get<std::uint8_t>()) {
      case kNull:
        return {};
      case kBool:
        return Value(get<std::uint8_t>() != 0);
      case kInt:
        return Value(get<std::int64_t>());
      case kDouble:
        return Value(get<double>());
      case kString:
        return Value(str());
      case kArray: {
        auto dtype = get<std::uint8_t>();
        auto rank = get<std::uint64_t>();
        if (dtype > static_cast<std::uint8_t>(DType::kFloat64) || rank > 64) break;
        std::vector<std::uint64_t> shape;
        for (std::uint64_t i = 0; i < rank && ok; ++i) shape.push_back(get<std::uint64_t>());
        if (!ok) break;
        const auto t = static_cast<DType>(dtype);
        const std::uint64_t n = shape_elements(shape);
        if (n > in.size() / dtype_size(t)) break;
        NdArray a(t, std::move(shape));
        auto raw = bytes(a.nbytes());
        if (!ok) break;
        if (!raw.empty()) std::memcpy(a.data(), raw.data(), raw.size());
        return Value(std::move(a));
      }
      case kList: {
        auto n = get<std::uint64_t>();
        if (n > in.size()) break;
        List l;
        l.reserve(n);
        for (std::uint64_t i = 0; i < n && ok; ++i) l.push_back(value(depth + 1));
        return Value(std::move(l));
      }
      case kMap: {
        auto n = get<std::uint64_t>();
        if (n > in.size()) break;
        Map m;
        for (std::uint64_t i = 0; i < n && ok; ++i) {
          std::string k = str();
          m.insert_or_assign(std::move(k), value(depth + 1));
        }
        return Value(std::move(m));
      }
      default:
        break;
    }
    ok = false;
    return {};
  }
};

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

}  // namespace

void append_value_bytes(const Value& v, std::string& out) {
  out.push_back(static_cast<char>(v.type()));
  switch (v.type()) {
    case Value::Type::kNull:
      break;
    case Value::Type::kBool:
      put<std::uint8_t>(out, v.get<bool>() ? 1 : 0);
      break;
    case Value::Type::kInt:
      put(out, v.get<std::int64_t>());
      break;
    case Value::Type::kDouble:
      put(out, v.get<double>());
      break;
    case Value::Type::kString:
      put_str(out, v.get<std::string>());
      break;
    case Value::Type::kArray: {
      const NdArray& a = v.get<NdArray>();
      put<std::uint8_t>(out, static_cast<std::uint8_t>(a.dtype()));
      put<std::uint64_t>(out, a.rank());
      for (auto d : a.shape()) put<std::uint64_t>(out, d);
      out.append(static_cast<const char*>(a.data()), a.nbytes());
      break;
    }
    case Value::Type::kList:
      put<std::uint64_t>(out, v.get<List>().size());
      for (const Value& x : v.get<List>()) append_value_bytes(x, out);
      break;
    case Value::Type::kMap:
      put<std::uint64_t>(out, v.get<Map>().size());
      for (const auto& [k, x] : v.get<Map>()) {
        put_str(out, k);
        append_value_bytes(x, out);
      }
      break;
  }
}

Expected<Value> value_from_bytes(std::string_view bytes) {
  Reader r{bytes};
  Value v = r.value();
  if (!r.ok || !r.in.empty()) return make_error(ErrorCode::kInvalidInput, "corrupt value bytes");
  return v;
}

std::string base64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const std::uint32_t n =
        (std::uint8_t(in[i]) << 16) | (std::uint8_t(in[i + 1]) << 8) | std::uint8_t(in[i + 2]);
    out += kB64[n >> 18];
    out += kB64[(n >> 12) & 63];
    out += kB64[(n >> 6) & 63];
    out += kB64[n & 63];
  }
  if (i < in.size()) {
    std::uint32_t n = std::uint8_t(in[i]) << 16;
    if (i + 1 < in.size()) n |= std::uint8_t(in[i + 1]) << 8;
    out += kB64[n >> 18];
    out += kB64[(n >> 12) & 63];
    out += i + 1 < in.size() ? kB64[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Expected<std::string> base64_decode(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (in.size() % 4 != 0) return make_error(ErrorCode::kInvalidInput, "bad base64 length");
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (std::size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      if (in[i + k] == '=' && i + 4 == in.size() && k >= 2) {
        v[k] = 0;
        ++pad;
      } else if ((v[k] = val(in[i + k])) < 0 || pad) {
        return make_error(ErrorCode::kInvalidInput, "bad base64 text");
      }
    }
    const std::uint32_t n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out += static_cast<char>(n >> 16);
    if (pad < 2) out += static_cast<char>((n >> 8) & 255);
    if (pad < 1) out += static_cast<char>(n & 255);
  }
  return out;
}

std::string encode_arguments(const std::vector<Argument>& args) {
  if (args.empty()) return "";
  std::string bytes;
  put<std::uint32_t>(bytes, static_cast<std::uint32_t>(args.size()));
  for (const Argument& a : args) {
    put<std::uint8_t>(bytes, static_cast<std::uint8_t>(a.kind));
    if (a.kind == Argument::Kind::kValue) {
      append_value_bytes(a.value, bytes);
      continue;
    }
    put<std::uint32_t>(bytes, static_cast<std::uint32_t>(a.refs.size()));
    for (const ArgumentRef& r : a.refs) {
      put<std::uint32_t>(bytes, r.position);
      put_str(bytes, r.parent);
    }
  }
  return base64_encode(bytes);
}

Expected<std::vector<Argument>> decode_arguments(std::string_view text) {
  std::vector<Argument> args;
  if (text.empty()) return args;
  auto bytes = base64_decode(text);
  if (!bytes) return tl::unexpected(bytes.error());
  Reader r{*bytes};
  const auto n = r.get<std::uint32_t>();
  for (std::uint32_t i = 0; i < n && r.ok; ++i) {
    Argument a;
    const auto kind = r.get<std::uint8_t>();
    if (kind > static_cast<std::uint8_t>(Argument::Kind::kGather)) r.ok = false;
    a.kind = static_cast<Argument::Kind>(kind);
    if (a.kind == Argument::Kind::kValue) {
      a.value = r.value();
    } else {
      const auto m = r.get<std::uint32_t>();
      if (m > r.in.size()) r.ok = false;
      for (std::uint32_t k = 0; k < m && r.ok; ++k) {
        ArgumentRef ref;
        ref.position = r.get<std::uint32_t>();
        ref.parent = r.str();
        a.refs.push_back(std::move(ref));
      }
    }
    args.push_back(std::move(a));
  }
  if (!r.ok || !r.in.empty())
    return make_error(ErrorCode::kInvalidInput, "corrupt function arguments");
  return args;
}

}  // namespace sluice
