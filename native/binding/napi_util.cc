#include "napi_util.h"

#include "env_data.h"

namespace nofail {

namespace {
const char* const kCodes[] = {
    "ERR_INVALID_ARG_TYPE", "ERR_OUT_OF_RANGE", "ERR_DOUBLE_FREE", "ERR_BAD_PAGE",
    "ERR_POOL_CLOSED",      "ENOMEM",           "ERR_SYSTEM",
};
static_assert(sizeof(kCodes) / sizeof(kCodes[0]) == static_cast<size_t>(ErrorKind::kCount));

const char* typeName(napi_valuetype t) {
  switch (t) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "a boolean";
    case napi_number: return "a number";
    case napi_string: return "a string";
    case napi_symbol: return "a symbol";
    case napi_object: return "an object";
    case napi_function: return "a function";
    case napi_external: return "an external";
    case napi_bigint: return "a bigint";
  }
  return "unknown";
}
}  // namespace

const char* errorCode(ErrorKind kind) { return kCodes[static_cast<int>(kind)]; }

void throwError(napi_env env, ErrorKind kind, const std::string& message) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  EnvData* data = EnvData::get(env);
  napi_ref ref = data ? data->errors[static_cast<int>(kind)] : nullptr;
  napi_value ctor = nullptr;
  if (ref != nullptr && napi_get_reference_value(env, ref, &ctor) == napi_ok && ctor != nullptr) {
    napi_value msg, err;
    napi_create_string_utf8(env, message.c_str(), message.size(), &msg);
    if (napi_new_instance(env, ctor, 1, &msg, &err) == napi_ok) {
      napi_throw(env, err);
      return;
    }
  }
  const char* code = errorCode(kind);
  switch (kind) {
    case ErrorKind::kInvalidArgType: napi_throw_type_error(env, code, message.c_str()); break;
    case ErrorKind::kOutOfRange: napi_throw_range_error(env, code, message.c_str()); break;
    default: napi_throw_error(env, code, message.c_str()); break;
  }
}

ErrorKind errorKindOf(Status s) {
  switch (s) {
    case Status::kNoMemWatermark:
    case Status::kNoMemFragmented: return ErrorKind::kNoMem;
    case Status::kOutOfRange:
    case Status::kNoTask: return ErrorKind::kOutOfRange;
    case Status::kDoubleFree: return ErrorKind::kDoubleFree;
    case Status::kBadPage:
    case Status::kOk: break;
  }
  return ErrorKind::kBadPage;
}

void throwStatus(napi_env env, Status s, const char* what) {
  std::string msg = what;
  switch (s) {
    case Status::kNoMemWatermark: msg += ": out of memory (watermark)"; break;
    case Status::kNoMemFragmented: msg += ": out of memory (no free block of that order)"; break;
    case Status::kOutOfRange: msg += ": pfn or order outside the pool"; break;
    case Status::kDoubleFree: msg += ": the block is already free (double free)"; break;
    case Status::kBadPage: msg += ": not an allocated block of this pool (tail page, wrong order or stale handle)"; break;
    case Status::kNoTask: msg += ": no such live task"; break;
    case Status::kOk: break;
  }
  throwError(env, errorKindOf(s), msg);
}

bool readSigned(napi_env env, napi_value v, const char* name, double max, int64_t* out) {
  // One call on the hot path: napi_get_value_double fails for a non-number.
  double d = 0;
  if (napi_get_value_double(env, v, &d) != napi_ok) {
    napi_valuetype t;
    napi_typeof(env, v, &t);
    throwError(env, ErrorKind::kInvalidArgType,
               std::string("The \"") + name + "\" argument must be of type number. Received " + typeName(t));
    return false;
  }
  if (!std::isfinite(d) || d != std::trunc(d) || d < -max || d > max) {
    throwError(env, ErrorKind::kOutOfRange,
               std::string("The value of \"") + name + "\" is out of range. It must be an integer >= " +
                   std::to_string(static_cast<int64_t>(-max)) + " and <= " +
                   std::to_string(static_cast<int64_t>(max)) + ". Received " + std::to_string(d));
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

bool readIndex(napi_env env, napi_value v, const char* name, double max, uint64_t* out) {
  double d = 0;
  if (napi_get_value_double(env, v, &d) != napi_ok) {
    napi_valuetype t;
    napi_typeof(env, v, &t);
    throwError(env, ErrorKind::kInvalidArgType,
               std::string("The \"") + name + "\" argument must be of type number. Received " + typeName(t));
    return false;
  }
  if (!std::isfinite(d) || d != std::trunc(d) || d < 0 || d > max) {
    throwError(env, ErrorKind::kOutOfRange,
               std::string("The value of \"") + name + "\" is out of range. It must be an integer >= 0 and <= " +
                   std::to_string(static_cast<uint64_t>(max)) + ". Received " + std::to_string(d));
    return false;
  }
  *out = static_cast<uint64_t>(d);
  return true;
}

bool readBool(napi_env env, napi_value v, const char* name, bool* out) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t != napi_boolean) {
    throwError(env, ErrorKind::kInvalidArgType,
               std::string("The \"") + name + "\" argument must be of type boolean. Received " + typeName(t));
    return false;
  }
  napi_get_value_bool(env, v, out);
  return true;
}

bool readTypedArray(napi_env env, napi_value v, const char* name, napi_typedarray_type type,
                    size_t minLength, void** data, size_t* length) {
  bool is = false;
  napi_is_typedarray(env, v, &is);
  napi_typedarray_type actual = napi_int8_array;
  if (is) napi_get_typedarray_info(env, v, &actual, length, data, nullptr, nullptr);
  const char* want = type == napi_int32_array ? "Int32Array" : "Float64Array";
  if (!is || actual != type) {
    throwError(env, ErrorKind::kInvalidArgType, std::string("The \"") + name + "\" argument must be an " + want);
    return false;
  }
  if (*length < minLength || (*length > 0 && *data == nullptr)) {
    throwError(env, ErrorKind::kOutOfRange,
               std::string("The \"") + name + "\" array is too short: need " + std::to_string(minLength) +
                   " elements, got " + std::to_string(*length));
    return false;
  }
  return true;
}

napi_value makeNumber(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

napi_value makeUndefined(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

}  // namespace nofail
