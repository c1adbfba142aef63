// CPUs the process may run on, and pinning the calling thread to one.
#pragma once

#include <vector>

namespace sluice {

// CPUs in the process's affinity mask, ascending.
std::vector<int> allowed_cpus();
// Pins the calling thread; returns false (and leaves it unpinned) on failure.
bool pin_current_thread(int cpu);

}  // namespace sluice
