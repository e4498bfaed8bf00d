// Compiled into both sluice_backend_mpi and sluice_backend_mpi_exec (never linked together).
#include "mpi_backend.hpp"

namespace sluice {

const OptionTable& mpi_option_table() {
  static const OptionTable table = {
      {"queue_per_slot", "1",
       "attempts queued per worker core (64 in SDK programs; keep 1 for timed command tasks)",
       check_count(1, 1 << 12)},
  };
  return table;
}

}  // namespace sluice
