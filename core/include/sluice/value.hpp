// Value: the data that tasks pass to each other through artifacts. A Value is null, a
// bool, a 64-bit integer, a double, a UTF-8 string, an NdArray (a dense row-major array
// of uint8/int32/int64/float32/float64 of any shape, empty ones included), a List of
// Values or a Map from string keys to Values; lists and maps nest freely.
//
// Values are plain data: copying copies everything (arrays included), moving is cheap
// (a few pointers). A Value is not thread-safe; distinct Values may be used from
// distinct threads. See hdf5_codec.hpp for how Values are stored in HDF5 files.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "sluice/error.hpp"

namespace sluice {

// Element type of an NdArray. The enumerator order is part of NdArray's storage.
enum class DType : std::uint8_t { kUInt8, kInt32, kInt64, kFloat32, kFloat64 };

// "uint8", "int32", "int64", "float32", "float64" (numpy's names).
constexpr const char* dtype_name(DType t) {
  constexpr const char* kNames[] = {"uint8", "int32", "int64", "float32", "float64"};
  return kNames[static_cast<int>(t)];
}
constexpr std::size_t dtype_size(DType t) {
  constexpr std::size_t kSizes[] = {1, 4, 8, 4, 8};
  return kSizes[static_cast<int>(t)];
}

// The C++ types an NdArray can hold, and the DType of each.
template <class T>
concept ArrayElement = std::same_as<T, std::uint8_t> || std::same_as<T, std::int32_t> ||
    std::same_as<T, std::int64_t> || std::same_as<T, float> || std::same_as<T, double>;
template <ArrayElement T>
constexpr DType dtype_of() {
  if constexpr (std::same_as<T, std::uint8_t>) return DType::kUInt8;
  if constexpr (std::same_as<T, std::int32_t>) return DType::kInt32;
  if constexpr (std::same_as<T, std::int64_t>) return DType::kInt64;
  if constexpr (std::same_as<T, float>) return DType::kFloat32;
  if constexpr (std::same_as<T, double>) return DType::kFloat64;
}

// Number of elements of an array of this shape (1 for the empty shape: a rank-0 array
// holds one element). Saturates at UINT64_MAX instead of overflowing.
inline std::uint64_t shape_elements(std::span<const std::uint64_t> shape) {
  std::uint64_t n = 1;
  for (std::uint64_t d : shape) {
    if (d == 0) return 0;
    if (n > UINT64_MAX / d) return UINT64_MAX;
    n *= d;
  }
  return n;
}

// A dense array stored contiguously in row-major (C) order. Every shape is valid:
// rank 0 (one element), 1-D, N-D, and shapes containing 0 (no elements).
class NdArray {
 public:
  // An empty 1-D float64 array (shape {0}).
  NdArray() : shape_{0} {}
  // A zero-filled array. Throws std::bad_alloc if the shape is too big for memory.
  NdArray(DType dtype, std::vector<std::uint64_t> shape);
  // Takes ownership of `values` (no copy) as an array of this shape.
  // Throws sluice::Error kInvalidInput if values.size() != shape_elements(shape).
  template <ArrayElement T>
  NdArray(std::vector<T> values, std::vector<std::uint64_t> shape);
  // A 1-D array of `values`.
  template <ArrayElement T>
  explicit NdArray(std::vector<T> values)
      : shape_{values.size()}, storage_(std::in_place_type<std::vector<T>>, std::move(values)) {}

  DType dtype() const { return static_cast<DType>(storage_.index()); }
  const std::vector<std::uint64_t>& shape() const { return shape_; }
  std::size_t rank() const { return shape_.size(); }
  std::uint64_t size() const { return shape_elements(shape_); }  // elements
  std::size_t nbytes() const { return size() * dtype_size(dtype()); }

  // The elements, typed. Throws sluice::Error kInvalidInput unless dtype() == dtype_of<T>().
  template <ArrayElement T>
  std::span<T> values() {
    if (auto* v = std::get_if<std::vector<T>>(&storage_)) [[likely]]
      return *v;
    throw_dtype_mismatch(dtype_of<T>());
  }
  template <ArrayElement T>
  std::span<const T> values() const {
    if (const auto* v = std::get_if<std::vector<T>>(&storage_)) [[likely]]
      return *v;
    throw_dtype_mismatch(dtype_of<T>());
  }
  // The elements as raw bytes (nbytes() of them), whatever the dtype.
  void* data() {
    return std::visit([](auto& v) -> void* { return v.data(); }, storage_);
  }
  const void* data() const {
    return std::visit([](const auto& v) -> const void* { return v.data(); }, storage_);
  }

  friend bool operator==(const NdArray&, const NdArray&) = default;

 private:
  // Alternative index == DType enumerator.
  using Storage = std::variant<std::vector<std::uint8_t>, std::vector<std::int32_t>,
                               std::vector<std::int64_t>, std::vector<float>, std::vector<double>>;
  [[noreturn]] void throw_dtype_mismatch(DType wanted) const {
    throw Error(ErrorCode::kInvalidInput, std::string("an array of ") + dtype_name(dtype()) +
                                              ", not of " + dtype_name(wanted));
  }

  std::vector<std::uint64_t> shape_;
  Storage storage_{std::in_place_type<std::vector<double>>};
};

class Value;
using List = std::vector<Value>;

// String-keyed map whose entries are kept sorted by key (byte order, which for UTF-8 is
// code point order), so iteration order is deterministic and matches HDF5's name order.
// Lookups are binary searches; inserting in key order is O(1), otherwise O(size()).
class Map {
 public:
  using Entry = std::pair<std::string, Value>;
  using const_iterator = std::vector<Entry>::const_iterator;

  Map() = default;
  Map(std::initializer_list<Entry> entries);

  // Defined after Value (clang instantiates them eagerly and needs Value complete).
  std::size_t size() const;
  bool empty() const;
  const_iterator begin() const;
  const_iterator end() const;

  // The value under `key`, or nullptr.
  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  bool contains(std::string_view key) const { return find(key) != nullptr; }
  // The value under `key`, inserting null first if absent.
  Value& operator[](std::string_view key);
  // Sets `key` to `value`, replacing any previous value.
  void insert_or_assign(std::string key, Value value);
  // Removes `key`; returns whether it was present.
  bool erase(std::string_view key);

  friend bool operator==(const Map&, const Map&);

 private:
  std::vector<Entry>::iterator lower_bound(std::string_view key);
  std::vector<Entry> entries_;  // sorted by key, keys unique
};

class Value {
 public:
  // Alternative index == Type enumerator.
  enum class Type : std::uint8_t { kNull, kBool, kInt, kDouble, kString, kArray, kList, kMap };
  struct Null {
    friend bool operator==(Null, Null) = default;
  };
  using Storage = std::variant<Null, bool, std::int64_t, double, std::string, NdArray, List, Map>;

  Value() = default;  // null
  Value(std::nullptr_t) {}
  Value(bool b) : v_(b) {}
  // Any integer type is stored as int64 (uint64 values above INT64_MAX wrap).
  template <std::integral I>
  requires(!std::same_as<I, bool>) Value(I i) : v_(static_cast<std::int64_t>(i)) {}
  template <std::floating_point F>
  Value(F d) : v_(static_cast<double>(d)) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(NdArray a) : v_(std::move(a)) {}
  Value(List l) : v_(std::move(l)) {}
  Value(Map m) : v_(std::move(m)) {}

  Type type() const { return static_cast<Type>(v_.index()); }
  bool is_null() const { return type() == Type::kNull; }

  // Typed access: T is one of bool, std::int64_t, double, std::string, NdArray, List, Map.
  // get_if returns nullptr on a type mismatch; get throws sluice::Error kInvalidInput.
  template <class T>
  bool is() const {
    return std::holds_alternative<T>(v_);
  }
  template <class T>
  const T* get_if() const {
    return std::get_if<T>(&v_);
  }
  template <class T>
  T* get_if() {
    return std::get_if<T>(&v_);
  }
  template <class T>
  const T& get() const {
    if (const T* p = std::get_if<T>(&v_)) [[likely]]
      return *p;
    throw_type_mismatch(index_of<T>());
  }
  template <class T>
  T& get() {
    if (T* p = std::get_if<T>(&v_)) [[likely]]
      return *p;
    throw_type_mismatch(index_of<T>());
  }

  // For std::visit.
  const Storage& storage() const { return v_; }
  Storage& storage() { return v_; }

  friend bool operator==(const Value& a, const Value& b) { return a.v_ == b.v_; }

 private:
  // The alternative index of T in Storage (a compile error for a T it cannot hold).
  template <class T>
  static constexpr Type index_of() {
    return index_in<T>(static_cast<Storage*>(nullptr));
  }
  template <class T, class... Ts>
  static constexpr Type index_in(std::variant<Ts...>*) {
    static_assert((std::same_as<T, Ts> || ...), "a Value cannot hold this type");
    std::size_t i = 0;
    bool found = false;
    ((found = found || std::same_as<T, Ts>, i += found ? 0 : 1), ...);
    return static_cast<Type>(i);
  }
  [[noreturn]] void throw_type_mismatch(Type wanted) const;

  Storage v_;
};

inline std::size_t Map::size() const { return entries_.size(); }
inline bool Map::empty() const { return entries_.empty(); }
inline Map::const_iterator Map::begin() const { return entries_.begin(); }
inline Map::const_iterator Map::end() const { return entries_.end(); }

// "null", "bool", "int64", "float64", "string", "array", "list", "map".
constexpr const char* type_name(Value::Type t) {
  constexpr const char* kNames[] = {"null",   "bool",  "int64", "float64",
                                    "string", "array", "list",  "map"};
  return kNames[static_cast<int>(t)];
}

// A short human summary: "int64", "string", "float64[1000,3]", "int32[]" (rank 0),
// "list[4]", "map{3}".
std::string describe(const Value& v);

// ---- Implementation details below ----

inline void Value::throw_type_mismatch(Type wanted) const {
  throw Error(ErrorCode::kInvalidInput,
              std::string("a Value of type ") + type_name(type()) + ", not " + type_name(wanted));
}

inline NdArray::NdArray(DType dtype, std::vector<std::uint64_t> shape) : shape_(std::move(shape)) {
  const std::uint64_t n = shape_elements(shape_);
  if (n > SIZE_MAX / 8) throw std::bad_alloc();
  switch (dtype) {
    case DType::kUInt8:
      storage_.emplace<std::vector<std::uint8_t>>(n);
      break;
    case DType::kInt32:
      storage_.emplace<std::vector<std::int32_t>>(n);
      break;
    case DType::kInt64:
      storage_.emplace<std::vector<std::int64_t>>(n);
      break;
    case DType::kFloat32:
      storage_.emplace<std::vector<float>>(n);
      break;
    case DType::kFloat64:
      storage_.emplace<std::vector<double>>(n);
      break;
  }
}

template <ArrayElement T>
NdArray::NdArray(std::vector<T> values, std::vector<std::uint64_t> shape)
    : shape_(std::move(shape)), storage_(std::in_place_type<std::vector<T>>, std::move(values)) {
  if (std::get<std::vector<T>>(storage_).size() != shape_elements(shape_)) {
    throw Error(ErrorCode::kInvalidInput, "NdArray: number of values does not match the shape");
  }
}

inline Map::Map(std::initializer_list<Entry> entries) {
  for (const Entry& e : entries) insert_or_assign(e.first, e.second);
}

inline std::vector<Map::Entry>::iterator Map::lower_bound(std::string_view key) {
  if (entries_.empty() || entries_.back().first < key) return entries_.end();
  return std::lower_bound(entries_.begin(), entries_.end(), key,
                          [](const Entry& e, std::string_view k) { return e.first < k; });
}

inline Value* Map::find(std::string_view key) {
  auto it = lower_bound(key);
  return it != entries_.end() && it->first == key ? &it->second : nullptr;
}

inline const Value* Map::find(std::string_view key) const {
  return const_cast<Map*>(this)->find(key);
}

inline Value& Map::operator[](std::string_view key) {
  auto it = lower_bound(key);
  if (it != entries_.end() && it->first == key) return it->second;
  return entries_.emplace(it, std::string(key), Value())->second;
}

inline void Map::insert_or_assign(std::string key, Value value) {
  auto it = lower_bound(key);
  if (it != entries_.end() && it->first == key) {
    it->second = std::move(value);
  } else {
    entries_.emplace(it, std::move(key), std::move(value));
  }
}

inline bool Map::erase(std::string_view key) {
  auto it = lower_bound(key);
  if (it == entries_.end() || it->first != key) return false;
  entries_.erase(it);
  return true;
}

inline bool operator==(const Map& a, const Map& b) {
  return a.entries_ == b.entries_;
}

inline std::string describe(const Value& v) {
  switch (v.type()) {
    case Value::Type::kArray: {
      const NdArray& a = v.get<NdArray>();
      std::string s = dtype_name(a.dtype());
      s += '[';
      for (std::size_t i = 0; i < a.rank(); ++i) {
        if (i > 0) s += ',';
        s += std::to_string(a.shape()[i]);
      }
      return s + ']';
    }
    case Value::Type::kList:
      return "list[" + std::to_string(v.get<List>().size()) + "]";
    case Value::Type::kMap:
      return "map{" + std::to_string(v.get<Map>().size()) + "}";
    default:
      return type_name(v.type());
  }
}

}  // namespace sluice
