#include "args.h"

#include <string>

namespace nofail {

namespace {

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

// The integer as %lld would print it (bounds are integers up to 2^53).
std::string integer(double d) { return std::to_string(static_cast<long long>(d)); }

}  // namespace

void refuseArgs(const Napi::CallbackInfo& info, size_t n) {
  throwError(info.Env(), ErrorKind::kInvalidArgType,
             "expected " + std::to_string(n) + " arguments, got " + std::to_string(info.Length()));
}

void refuseInteger(const Napi::Value& v, const char* name, double min, double max) {
  // An empty value: reading it threw (a getter), and that exception is pending.
  if (v.IsEmpty()) return;
  if (!v.IsNumber()) {
    throwError(v.Env(), ErrorKind::kInvalidArgType,
               std::string("The \"") + name + "\" argument must be of type number. Received " + typeName(v.Type()));
    return;
  }
  throwError(v.Env(), ErrorKind::kOutOfRange,
             std::string("The value of \"") + name + "\" is out of range. It must be an integer >= " + integer(min) +
                 " and <= " + integer(max) + ". Received " + std::to_string(v.As<Napi::Number>().DoubleValue()));
}

bool readBool(const Napi::Value& v, const char* name, bool* out) {
  if (v.IsEmpty()) return false;
  if (!v.IsBoolean()) {
    throwError(v.Env(), ErrorKind::kInvalidArgType,
               std::string("The \"") + name + "\" argument must be of type boolean. Received " + typeName(v.Type()));
    return false;
  }
  *out = v.As<Napi::Boolean>().Value();
  return true;
}

void refuseTypedArray(const char* name, const char* want, bool rightType, size_t minLength, size_t length,
                      Napi::Env env) {
  if (!rightType) {
    throwError(env, ErrorKind::kInvalidArgType, std::string("The \"") + name + "\" argument must be an " + want);
  } else {
    throwError(env, ErrorKind::kOutOfRange,
               std::string("The \"") + name + "\" array is too short: need " + std::to_string(minLength) +
                   " elements, got " + std::to_string(length));
  }
}

}  // namespace nofail
