#include "inproc_options.hpp"

#include "sluice/engine/backend_registry.hpp"

namespace sluice {

const OptionTable& inproc_option_table() {
  static const OptionTable table = {
      {"queue_per_thread", "256",
       "cpu slots offered per thread: functions queued in the pool, completions in batches",
       check_count(1, 1 << 16)},
  };
  return table;
}

}  // namespace sluice
