#include "errors.h"

#include <cerrno>
#include <cstring>

#include "env_data.h"

namespace nofail {

namespace {

const char* const kCodes[] = {
#define NOFAIL_ERROR_CODE(k, code) code,
    NOFAIL_ERROR_KINDS(NOFAIL_ERROR_CODE)
#undef NOFAIL_ERROR_CODE
};

}  // namespace

const char* errorCode(ErrorKind kind) { return kCodes[static_cast<int>(kind)]; }

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

Napi::Error makeError(Napi::Env env, ErrorKind kind, const std::string& message) {
  const EnvData* data = env.GetInstanceData<EnvData>();
  const Napi::FunctionReference* ctor = data != nullptr ? &data->errors[static_cast<int>(kind)] : nullptr;
  if (ctor != nullptr && !ctor->IsEmpty()) {
    napi_value err = nullptr;
    napi_value msg = Napi::String::New(env, message);
    // The C call, for its status: a constructor that throws leaves its
    // exception pending, and nothing else is made.
    if (napi_new_instance(env, ctor->Value(), 1, &msg, &err) != napi_ok) return Napi::Error();
    return Napi::Error(env, err);
  }
  Napi::Error e;
  switch (kind) {
    case ErrorKind::kInvalidArgType: e = Napi::TypeError::New(env, message); break;
    case ErrorKind::kOutOfRange: e = Napi::RangeError::New(env, message); break;
    default: e = Napi::Error::New(env, message); break;
  }
  e.Set("code", Napi::String::New(env, errorCode(kind)));
  return e;
}

void throwError(Napi::Env env, ErrorKind kind, const std::string& message) {
  if (env.IsExceptionPending()) return;
  Napi::Error e = makeError(env, kind, message);
  if (!e.IsEmpty()) e.ThrowAsJavaScriptException();
}

void throwStatus(Napi::Env env, Status s, const char* what) {
  throwError(env, errorKindOf(s), std::string(what) + ": " + statusMessage(s));
}

void throwSystem(Napi::Env env, const char* call, int err) {
  if (env.IsExceptionPending()) return;
  // What the errno means to the caller: EINVAL from mmap or mlock is the
  // size refused (a value out of range); the rest (ENOMEM, EAGAIN, EPERM:
  // address space, RLIMIT_MEMLOCK, privileges) is the system's answer.
  const bool refused = err == EINVAL && (std::strcmp(call, "mmap") == 0 || std::strcmp(call, "mlock") == 0);
  std::string message = std::string(call) + " failed: " + std::strerror(err) + " (errno " + std::to_string(err) + ")";
  if (std::strcmp(call, "mlock") == 0 && (err == ENOMEM || err == EPERM || err == EAGAIN)) {
    message += "; RLIMIT_MEMLOCK applies, see `ulimit -l`";
  }
  Napi::Error e = makeError(env, refused ? ErrorKind::kOutOfRange : ErrorKind::kSystem, message);
  if (e.IsEmpty()) return;
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, call));
  e.ThrowAsJavaScriptException();
}

}  // namespace nofail
