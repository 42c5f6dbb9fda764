// Small helpers for the Node-API glue: typed errors with stable codes, and
// argument readers that validate everything that could corrupt memory.
// Every reader returns false after throwing, so callers write
//   if (!readIndex(...)) return nullptr;
#pragma once

#include <node_api.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "../core/status.h"

namespace nofail {

// The error classes, in the order src/errors.ts registers them (init()).
enum class ErrorKind : int {
  kInvalidArgType = 0,  // TypeError   ERR_INVALID_ARG_TYPE
  kOutOfRange,          // RangeError  ERR_OUT_OF_RANGE
  kDoubleFree,          // Error       ERR_DOUBLE_FREE
  kBadPage,             // Error       ERR_BAD_PAGE
  kPoolClosed,          // Error       ERR_POOL_CLOSED
  kNoMem,               // AllocError  ENOMEM
  kSystem,              // Error       ERR_SYSTEM
  kCount,
};

const char* errorCode(ErrorKind kind);

// Throws `kind` using the class JavaScript registered, or a plain
// Error/TypeError/RangeError with the same `code` when called before init().
void throwError(napi_env env, ErrorKind kind, const std::string& message);
ErrorKind errorKindOf(Status s);
void throwStatus(napi_env env, Status s, const char* what);

// Reads an integer in [0, max]: TypeError for a non-number, RangeError for
// NaN, infinities, fractions, negatives and values above max.
bool readIndex(napi_env env, napi_value v, const char* name, double max, uint64_t* out);
// Same, but allows negative values down to -max.
bool readSigned(napi_env env, napi_value v, const char* name, double max, int64_t* out);
bool readBool(napi_env env, napi_value v, const char* name, bool* out);
// An Int32Array / Float64Array of at least `minLength` elements.
bool readTypedArray(napi_env env, napi_value v, const char* name, napi_typedarray_type type,
                    size_t minLength, void** data, size_t* length);

napi_value makeNumber(napi_env env, double d);
napi_value makeUndefined(napi_env env);

}  // namespace nofail
