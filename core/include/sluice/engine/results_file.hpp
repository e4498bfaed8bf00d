// The results file: a second way for a command task to pass values on, without starting a
// process per value. The task appends lines to the file named by SLUICE_RESULTS (its
// attempt directory's `results`), as GitHub Actions' $GITHUB_OUTPUT:
//
//   KEY=VALUE       typed as `sluice put KEY VALUE` types it (int, float, bool, JSON
//                   arrays/objects, else string)
//   KEY<<DELIM      the lines up to one that is exactly DELIM, typed as `sluice put KEY
//   ...             --file` types a file (a table of numbers becomes a 1-D or 2-D
//   DELIM           array, anything else one string)
//   =KEY BASE64     a value already typed, in Sluice's binary encoding (append_value_bytes
//                   in function_args.hpp), base64: what `sluice put` and SDK workers write
//
// Blank lines are skipped; a later line for a key replaces an earlier one. When the task
// exits 0, the coordinator merges these values into the attempt's artifact (creating it
// when the task wrote none) before sealing it, so dependents read them with `sluice get`,
// `sluice inputs`, {inputs.PARENT.KEY} or HDF5 like any other value.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "sluice/error.hpp"
#include "sluice/value.hpp"

namespace sluice {

// The file's name inside an attempt directory.
inline constexpr std::string_view kResultsFile = "results";

// Larger files are refused: big data belongs in the artifact (`sluice put --file`, HDF5).
inline constexpr std::size_t kMaxResultsBytes = std::size_t{64} << 20;

// Parses the text of a results file. kInvalidInput with "NAME:LINE: what is wrong" (NAME
// is `name`) for a line that is neither KEY=VALUE nor KEY<<DELIM, an empty or
// whitespace-holding key, or a DELIM never closed.
Expected<Map> parse_results(std::string_view text, const std::string& name);

// Reads and parses the results file at `path` (errors as parse_results, with `path` as
// NAME). kInvalidInput also for a file over kMaxResultsBytes or not a regular file
// (links are not followed); kIo when it cannot be read.
Expected<Map> read_results(const std::string& path);

// Values at most this big (encoded) travel through the results file and are packed by the
// coordinator; bigger ones get an artifact file of their own (`sluice put`, SDK workers).
inline constexpr std::size_t kMaxPackedValueBytes = std::size_t{1} << 20;

// The "=KEY BASE64" line for `value`, with its newline.
std::string format_packed_line(const std::string& key, const Value& value);
// Appends that line to the results file at `results_path` in one write (creating it).
// kIo when it cannot be written.
Expected<void> append_packed_value(const std::string& results_path, const std::string& key,
                                   const Value& value);

// Merges `results` into the artifact at `artifact_path` (created when there is none; the
// path of `sluice put` too): its values are kept unless a result replaces them, its root
// attributes are kept, and the file is replaced atomically. kInvalidInput for an unreadable
// artifact or a value HDF5 cannot hold, kIo when it cannot be written. (An attempt with results and
// no artifact gets a new one from write_sealed_artifact() in artifacts.hpp.)
Expected<void> merge_into_artifact(const Map& results, const std::string& artifact_path);

}  // namespace sluice
