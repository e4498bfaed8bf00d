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

void register_inproc_elsewhere() {
  register_backend(
      "inproc",
      [](const BackendOptions&) -> Expected<std::unique_ptr<Backend>> {
        return make_error(ErrorCode::kInvalidInput,
                          "the inproc backend runs the C++ function tasks of a program built "
                          "with the Sluice SDK (`./app run --config inproc`); `sluice` runs "
                          "workflow files, whose tasks are commands: use --backend local");
      },
      inproc_option_table());
}

}  // namespace sluice
