// A registry of kinds (of source, sink, aggregate function, window) by name:
// the built-ins, listed once where they are defined, then the ones added at
// start-up (a test's or a plugin's), in that order. Lookups are at start-up
// only (config checks, building the engine), never per event.
//
// Why a list and not self-registering globals: a static library drops an
// object file that nothing references, and its registration with it.
//
// Threads: add() before any thread looks kinds up (start-up).
#pragma once

#include <initializer_list>
#include <vector>

namespace sluice {

template <typename Kind, typename Name>
class KindRegistry {
 public:
  using NameOf = Name (*)(const Kind&);
  KindRegistry(std::initializer_list<const Kind*> builtins, NameOf name_of)
      : kinds_(builtins), name_of_(name_of) {}

  const Kind* find(const Name& name) const {
    for (const Kind* k : kinds_) {
      if (name_of_(*k) == name) return k;
    }
    return nullptr;
  }
  // Adds a kind whose name is not taken yet (a second add is ignored).
  void add(const Kind* kind) {
    if (find(name_of_(*kind)) == nullptr) kinds_.push_back(kind);
  }
  const std::vector<const Kind*>& kinds() const { return kinds_; }

 private:
  std::vector<const Kind*> kinds_;
  NameOf name_of_;
};

}  // namespace sluice
