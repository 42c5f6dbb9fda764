// Result codes of the native core. The core never throws and never prints:
// every operation returns one of these, and the binding turns them into
// typed JavaScript errors with stable codes (see src/errors.ts).
//
// Declared once, here: the binding exports the table (layout.status) and
// src/binding/native.ts builds STATUS from it.
#pragma once

namespace nofail {

// X(name exported to JavaScript, enumerator, value, what the binding's error message says)
#define NOFAIL_STATUSES(X)                                                                               \
  X(OK, kOk, 0, "ok")                                                                                    \
  /* free pages would fall below the caller's watermark */                                              \
  X(NOMEM_WATERMARK, kNoMemWatermark, -1, "out of memory (watermark)")                                   \
  /* enough free pages, but no free block of the order */                                               \
  X(NOMEM_FRAGMENTED, kNoMemFragmented, -2, "out of memory (no free block of that order)")              \
  /* pfn or order outside the pool */                                                                    \
  X(OUT_OF_RANGE, kOutOfRange, -3, "pfn or order outside the pool")                                      \
  /* the block is already free */                                                                        \
  X(DOUBLE_FREE, kDoubleFree, -4, "the block is already free (double free)")                            \
  /* not an allocated head, wrong order, stale generation */                                            \
  X(BAD_PAGE, kBadPage, -5, "not an allocated block of this pool (tail page, wrong order or stale handle)") \
  /* no free task slot / task id not live */                                                             \
  X(NO_TASK, kNoTask, -6, "no such live task")

enum class Status : int {
#define NOFAIL_STATUS_ENUM(name, k, value, message) k = value,
  NOFAIL_STATUSES(NOFAIL_STATUS_ENUM)
#undef NOFAIL_STATUS_ENUM
};

inline bool isNoMem(Status s) {
  return s == Status::kNoMemWatermark || s == Status::kNoMemFragmented;
}

inline const char* statusMessage(Status s) {
  switch (s) {
#define NOFAIL_STATUS_MESSAGE(name, k, value, message) \
  case Status::k:                                      \
    return message;
    NOFAIL_STATUSES(NOFAIL_STATUS_MESSAGE)
#undef NOFAIL_STATUS_MESSAGE
  }
  return "unknown status";
}

}  // namespace nofail
