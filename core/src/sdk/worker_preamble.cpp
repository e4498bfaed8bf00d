#include "sdk/worker_preamble.hpp"

#include <atomic>
#include <fstream>
#include <string>

namespace sluice {
namespace {

std::atomic<bool> g_preamble{true};

// The same test as sluice::main's: argv[1] is "__sluice_worker" and a function follows.
bool launched_as_worker() {
  static const bool worker = [] {
    std::ifstream cmdline("/proc/self/cmdline", std::ios::binary);
    std::string program, verb, function;
    return std::getline(cmdline, program, '\0') && std::getline(cmdline, verb, '\0') &&
           verb == "__sluice_worker" && std::getline(cmdline, function, '\0');
  }();
  return worker;
}

}  // namespace

bool in_worker_preamble() {
  return g_preamble.load(std::memory_order_relaxed) && launched_as_worker();
}

void end_worker_preamble() {
  g_preamble.store(false, std::memory_order_relaxed);
}

}  // namespace sluice
