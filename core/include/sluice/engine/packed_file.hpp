// Files that hold many tasks' packed values at once, one group per task (/TASK/KEY):
// the run's view run.h5 and the value segments RUN/values/NNNN.h5 that a dependent's
// SLUICE_INPUT_<P> names (with SLUICE_INPUT_<P>_GROUP = /P). Packing is what keeps a run
// of a million value-returning tasks from costing a million files (docs/artifacts.md).
//
// Written by the coordinator only, to a temporary name, closed, then renamed: a reader
// sees the whole file or none.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sluice/error.hpp"

namespace sluice {

class Map;

// One attempt's provenance as a row of run.h5's /provenance table.
struct ProvenanceRow {
  std::string task;  // name@version
  std::uint32_t attempt = 0;
  std::string host;
  std::int64_t started_us = 0;
  std::int64_t ended_us = 0;
  int exit_status = 0;
  std::string command;  // argv joined with spaces, or the shell string
  std::string inputs;   // the parents' names, joined with spaces
};

struct PackedFileContents {
  // Group /NAME with one dataset (or group, for lists and maps) per key.
  std::vector<std::pair<std::string, const Map*>> tasks;
  // External link /NAME to the root of a file of the task's own, the path relative to
  // the packed file's directory.
  std::vector<std::pair<std::string, std::string>> links;
  // When set, the compound dataset /provenance, one row per attempt.
  const std::vector<ProvenanceRow>* provenance = nullptr;
};

// Writes `contents` to `path` (atomically: a temporary file renamed into place). kIo when
// the file cannot be written, kInvalidInput for a value HDF5 cannot hold.
Expected<void> write_packed_file(const std::string& path, const PackedFileContents& contents);

// A packed file built a piece at a time (the run's view, filled while the run goes on):
// under a temporary name (PATH.tmp-PID) until commit() renames it to PATH; destroyed
// uncommitted, it removes the temporary file. Errors as write_packed_file's. One thread
// at a time.
class PackedFileWriter {
 public:
  static Expected<PackedFileWriter> create(const std::string& path);
  PackedFileWriter(PackedFileWriter&&) noexcept;
  PackedFileWriter& operator=(PackedFileWriter&&) noexcept;
  ~PackedFileWriter();

  Expected<void> add_task(const std::string& name, const Map& values);
  Expected<void> remove_task(const std::string& name);  // a group add_task wrote
  Expected<void> add_link(const std::string& name, const std::string& target);
  Expected<void> add_provenance(const std::vector<ProvenanceRow>& rows);
  Expected<void> commit();

 private:
  struct Impl;
  explicit PackedFileWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice
