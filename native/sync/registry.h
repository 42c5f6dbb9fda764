// The process-wide pool registry: id -> pool, so that a worker thread can
// attach to a pool another thread created (Pool.attach(handle)).
//
// Reference counting: every attachment of an environment holds a
// shared_ptr<Pool>; the registry holds only a weak_ptr. The last
// environment to detach drops the last reference and the pool is unmapped;
// from then on attach() finds it expired and reports it closed.
//
// Locking: lock_ (rank 10) guards the map. It is taken before, never
// after, a pool's zone lock.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>

#include "lock.h"
#include "pool.h"

namespace nofail {

class Registry {
 public:
  static Registry& instance();

  // Gives the pool its id and nonce and makes it attachable.
  void add(const std::shared_ptr<Pool>& pool);
  // The pool with this id and nonce, or null if there is none (never was,
  // wrong nonce, or already destroyed).
  std::shared_ptr<Pool> find(uint32_t id, uint32_t nonce);

 private:
  Registry() = default;
  RankedLock lock_{LockRank::kRegistry};
  std::unordered_map<uint32_t, std::weak_ptr<Pool>> pools_;
  uint32_t nextId_ = 1;
};

}  // namespace nofail
