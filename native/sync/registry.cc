#include "registry.h"

#include <random>

namespace nofail {

Registry& Registry::instance() {
  // Leaked on purpose: worker environments may be torn down after static
  // destructors would have run.
  static Registry* r = new Registry();
  return *r;
}

void Registry::add(const std::shared_ptr<Pool>& pool) {
  std::random_device rd;
  const uint32_t nonce = rd();
  Guard<RankedLock> g(lock_);
  // Drop entries of destroyed pools so the map stays as small as the set
  // of live pools.
  for (auto it = pools_.begin(); it != pools_.end();) {
    it = it->second.expired() ? pools_.erase(it) : std::next(it);
  }
  pool->id = nextId_++;
  pool->nonce = nonce;
  pools_[pool->id] = pool;
}

std::shared_ptr<Pool> Registry::find(uint32_t id, uint32_t nonce) {
  Guard<RankedLock> g(lock_);
  auto it = pools_.find(id);
  if (it == pools_.end()) return nullptr;
  std::shared_ptr<Pool> p = it->second.lock();
  if (!p || p->nonce != nonce) return nullptr;
  return p;
}

}  // namespace nofail
