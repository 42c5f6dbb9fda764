// Argument readers over Napi values. Each validates everything that could
// corrupt memory, throws a typed error naming the argument when the value
// will not do, and returns false after throwing, so callers write
//   if (!readIndex(info[1], "order", max, &order)) return {};
//
// The hot entry points (alloc, free, the bulk calls, addReserved,
// tryReserve) read every argument through these: the accepting path of a
// number is one Node-API call and a few compares, inline; the refusing path
// is out of line. Nothing here allocates on the accepting path.
#pragma once

#include <napi.h>

#include <cstdint>

#include "errors.h"

namespace nofail {

// Throws ERR_INVALID_ARG_TYPE "expected n arguments, got m".
[[gnu::cold]] void refuseArgs(const Napi::CallbackInfo& info, size_t n);

// At least `n` arguments, or throws.
inline bool haveArgs(const Napi::CallbackInfo& info, size_t n) {
  if (info.Length() >= n) return true;
  refuseArgs(info, n);
  return false;
}

// Throws for a value readIndex/readSigned refused: TypeError for a
// non-number, RangeError for NaN, infinities, fractions and values outside
// [min, max].
[[gnu::cold]] void refuseInteger(const Napi::Value& v, const char* name, double min, double max);

// An integer in [0, max] (max <= 2^53).
inline bool readIndex(const Napi::Value& v, const char* name, double max, uint64_t* out) {
  double d;
  // NaN fails both compares; the cast back is exact for every value in range.
  if (napi_get_value_double(v.Env(), v, &d) == napi_ok && d >= 0 && d <= max &&
      static_cast<double>(static_cast<uint64_t>(d)) == d) {
    *out = static_cast<uint64_t>(d);
    return true;
  }
  refuseInteger(v, name, 0, max);
  return false;
}

// An integer in [min, max] (|min|, |max| <= 2^53).
inline bool readSigned(const Napi::Value& v, const char* name, double min, double max, int64_t* out) {
  double d;
  if (napi_get_value_double(v.Env(), v, &d) == napi_ok && d >= min && d <= max &&
      static_cast<double>(static_cast<int64_t>(d)) == d) {
    *out = static_cast<int64_t>(d);
    return true;
  }
  refuseInteger(v, name, min, max);
  return false;
}

bool readBool(const Napi::Value& v, const char* name, bool* out);

// A typed array of T (int32_t: Int32Array, double: Float64Array) of at
// least `minLength` elements, as its data and length. One Node-API call
// reads its type, length, data (and buffer, when asked for): the public
// Napi::TypedArrayOf<T> constructor would make two, and this runs on every
// bulk call.
template <typename T>
struct TypedArrayData {
  T* data = nullptr;
  size_t length = 0;
};

[[gnu::cold]] void refuseTypedArray(const char* name, const char* want, bool rightType, size_t minLength,
                                    size_t length, Napi::Env env);

template <typename T>
struct TypedArrayTraits;
template <>
struct TypedArrayTraits<int32_t> {
  static constexpr napi_typedarray_type kType = napi_int32_array;
  static constexpr const char* kName = "Int32Array";
};
template <>
struct TypedArrayTraits<double> {
  static constexpr napi_typedarray_type kType = napi_float64_array;
  static constexpr const char* kName = "Float64Array";
};

template <typename T>
inline bool readTypedArray(const Napi::Value& v, const char* name, size_t minLength, TypedArrayData<T>* out,
                           napi_value* buffer = nullptr) {
  napi_typedarray_type type = napi_int8_array;
  size_t length = 0;
  void* data = nullptr;
  // napi_get_typedarray_info refuses (napi_invalid_arg) anything that is not a typed array.
  const bool is = napi_get_typedarray_info(v.Env(), v, &type, &length, &data, buffer, nullptr) == napi_ok;
  if (!is || type != TypedArrayTraits<T>::kType || length < minLength || (length > 0 && data == nullptr)) {
    refuseTypedArray(name, TypedArrayTraits<T>::kName, is && type == TypedArrayTraits<T>::kType, minLength, length,
                     v.Env());
    return false;
  }
  out->data = static_cast<T*>(data);
  out->length = length;
  return true;
}

}  // namespace nofail
