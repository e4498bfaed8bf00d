// The one translation unit that compiles TOML++'s parser into sluice_core (every other
// file includes <toml++/toml.h> with TOML_HEADER_ONLY=0 and sees declarations only).
// Why not Debian's libtomlplusplus.so: `sluice` links libstdc++ and libgcc statically
// (faster start of every `sluice put`), and an exception thrown inside the shared
// library, as every parse error is, cannot unwind through the other runtime: the
// process aborted instead of reporting `file:line:col: error: syntax: ...`.
#define TOML_IMPLEMENTATION
#include <toml++/toml.h>
