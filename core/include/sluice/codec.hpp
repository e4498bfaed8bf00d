// Codec: how a C++ type becomes a Value (value.hpp) and back, so that function tasks
// take and return ordinary C++ types while artifacts hold typed HDF5 data.
//
// Built in: bool, every integer and floating-point type, std::string, Value, NdArray,
// List, Map, std::vector<T> (numbers: a 1-D NdArray; anything else: a List),
// std::map<std::string, T> (a Map) and std::optional<T> (null when empty).
// A vector parameter also accepts a List (what flow.gather() produces).
//
// User types: specialize sluice::Codec with two static functions. decode() throws
// sluice::Error kInvalidInput when the Value has the wrong shape (Value::get does so on a
// type mismatch); the task's attempt then fails with that message.
//
//   struct Model { std::string name; double score; };
//   template <> struct sluice::Codec<Model> {
//     static sluice::Value encode(const Model& m) {
//       return sluice::Map{{"name", m.name}, {"score", m.score}};
//     }
//     static Model decode(const sluice::Value& v) {
//       const auto& m = v.get<sluice::Map>();
//       return {m.find("name")->get<std::string>(), m.find("score")->get<double>()};
//     }
//   };
#pragma once

#include <concepts>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "sluice/value.hpp"

namespace sluice {

template <class T>
struct Codec;  // specialize for your own types

// True when sluice::Codec<T> is usable.
template <class T>
concept Encodable = requires(const T& t, const Value& v) {
  { Codec<T>::encode(t) } -> std::convertible_to<Value>;
  { Codec<T>::decode(v) } -> std::convertible_to<T>;
};

template <class T>
Value to_value(const T& t) {
  return Codec<T>::encode(t);
}
template <class T>
T from_value(const Value& v) {
  return Codec<T>::decode(v);
}

// ---- Built-in codecs ----

template <>
struct Codec<Value> {
  static Value encode(const Value& v) { return v; }
  static Value decode(const Value& v) { return v; }
};

template <>
struct Codec<bool> {
  static Value encode(bool b) { return Value(b); }
  static bool decode(const Value& v) { return v.get<bool>(); }
};

template <class I>
requires(std::integral<I> && !std::same_as<I, bool>) struct Codec<I> {
  static Value encode(I i) { return Value(i); }
  static I decode(const Value& v) {
    if (const auto* d = v.get_if<double>()) return static_cast<I>(*d);
    return static_cast<I>(v.get<std::int64_t>());
  }
};

template <std::floating_point F>
struct Codec<F> {
  static Value encode(F f) { return Value(f); }
  static F decode(const Value& v) {
    if (const auto* i = v.get_if<std::int64_t>()) return static_cast<F>(*i);
    return static_cast<F>(v.get<double>());
  }
};

template <>
struct Codec<std::string> {
  static Value encode(const std::string& s) { return Value(s); }
  static std::string decode(const Value& v) { return v.get<std::string>(); }
};

template <class T>
requires(std::same_as<T, NdArray> || std::same_as<T, List> || std::same_as<T, Map>)
struct Codec<T> {
  static Value encode(const T& t) { return Value(t); }
  static T decode(const Value& v) { return v.get<T>(); }
};

template <class T>
struct Codec<std::vector<T>> {
  static Value encode(const std::vector<T>& xs) {
    if constexpr (ArrayElement<T>) {
      return Value(NdArray(xs));
    } else {
      List l;
      l.reserve(xs.size());
      for (const T& x : xs) l.push_back(Codec<T>::encode(x));
      return Value(std::move(l));
    }
  }
  static std::vector<T> decode(const Value& v) {
    if constexpr (ArrayElement<T>) {
      if (const auto* a = v.get_if<NdArray>()) {
        auto s = a->values<T>();
        return std::vector<T>(s.begin(), s.end());
      }
    }
    std::vector<T> out;
    for (const Value& x : v.get<List>()) out.push_back(Codec<T>::decode(x));
    return out;
  }
};

template <class T>
struct Codec<std::map<std::string, T>> {
  static Value encode(const std::map<std::string, T>& m) {
    Map out;
    for (const auto& [k, x] : m) out.insert_or_assign(k, Codec<T>::encode(x));
    return Value(std::move(out));
  }
  static std::map<std::string, T> decode(const Value& v) {
    std::map<std::string, T> out;
    for (const auto& [k, x] : v.get<Map>()) out.emplace(k, Codec<T>::decode(x));
    return out;
  }
};

template <class T>
struct Codec<std::optional<T>> {
  static Value encode(const std::optional<T>& o) { return o ? Codec<T>::encode(*o) : Value(); }
  static std::optional<T> decode(const Value& v) {
    if (v.is_null()) return std::nullopt;
    return Codec<T>::decode(v);
  }
};

}  // namespace sluice
