#include "inproc_commands.hpp"

#include <cstdio>

#include "inproc_options.hpp"
#include "local_backend.hpp"
#include "sluice/engine/backend_registry.hpp"

namespace sluice::cli {

void register_inproc_for_commands() {
  register_backend(
      "inproc",
      [](const BackendOptions& options) -> Expected<std::unique_ptr<Backend>> {
        BackendOptions local = options;
        std::erase_if(local.extra, [](const auto& kv) {
          return find_option(local_option_table(), kv.first) == nullptr;
        });
        std::fflush(stdout);
        std::fprintf(stderr,
                     "sluice: inproc runs the C++ function tasks of SDK programs; a workflow "
                     "file's tasks are commands: they run as processes (backend local)\n");
        return make_local_backend(local);
      },
      inproc_option_table());
}

}  // namespace sluice::cli
