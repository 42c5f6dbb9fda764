// Typed errors with stable codes. The classes are JavaScript's
// (src/errors.ts nativeErrorClasses, handed over once by init()), so an
// error thrown here is an instance of the same class, with the same `code`,
// as one thrown in TypeScript.
//
// Exceptions: the binding is built with NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS
// (binding.gyp, CMakeLists.txt), like the core (-fno-exceptions): a helper
// that throws leaves the JavaScript exception pending and returns false or
// an empty value, and its caller returns at once. Measured on the hot calls
// (bench/binding-compare.mjs under callgrind), a C++-exceptions build of the
// same sources ran 0.5-4 % fewer native instructions per call (Napi inlines
// CallbackInfo's constructor there), too little to show in wall time; this
// way no C++ exception can cross a cleanup hook or leave an attachment half
// made, and the errors, which carry `freed`, `errno` and `syscall`, are
// built the same way wherever they are thrown.
#pragma once

#include <napi.h>

#include <string>

#include "../core/status.h"

namespace nofail {

// The error classes, by the code src/errors.ts registers them under.
// X(enumerator, code)
#define NOFAIL_ERROR_KINDS(X)                          \
  X(kInvalidArgType, "ERR_INVALID_ARG_TYPE") /* TypeError */ \
  X(kOutOfRange, "ERR_OUT_OF_RANGE")         /* RangeError */ \
  X(kDoubleFree, "ERR_DOUBLE_FREE")                    \
  X(kBadPage, "ERR_BAD_PAGE")                          \
  X(kPoolClosed, "ERR_POOL_CLOSED")                    \
  X(kNoMem, "ENOMEM")                                  \
  X(kSystem, "ERR_SYSTEM")

enum class ErrorKind : int {
#define NOFAIL_ERROR_ENUM(k, code) k,
  NOFAIL_ERROR_KINDS(NOFAIL_ERROR_ENUM)
#undef NOFAIL_ERROR_ENUM
  kCount,
};
constexpr int kErrorKinds = static_cast<int>(ErrorKind::kCount);

const char* errorCode(ErrorKind kind);

// A new error of `kind`, of the class JavaScript registered, or before
// init() a plain Error/TypeError/RangeError with the same `code`. Empty if
// making it threw (that exception is then pending).
Napi::Error makeError(Napi::Env env, ErrorKind kind, const std::string& message);
// Throws it, unless an exception is already pending (the first one wins).
void throwError(Napi::Env env, ErrorKind kind, const std::string& message);
// The kind a core Status maps to.
ErrorKind errorKindOf(Status s);
// "what: <the status's message>", with the kind the status maps to.
void throwStatus(Napi::Env env, Status s, const char* what);
// A failed system call: a SystemError (or, where the errno means the
// caller's value was refused, an OutOfRangeError) carrying `errno` and
// `syscall`, and a message with strerror.
void throwSystem(Napi::Env env, const char* call, int err);

}  // namespace nofail
