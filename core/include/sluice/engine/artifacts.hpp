// Artifacts in a run: where an attempt's `output.h5` lives, how dependents find their
// parents' artifacts (environment variables), how the coordinator seals an artifact
// (checks it is readable HDF5, records provenance on its root, checksums it), and the
// run-level view `run.h5` that links every task's final artifact.
//
// The codec for what is inside an artifact is in hdf5_codec.hpp. Functions here are
// called by the coordinator only (workers never write the store); not thread-safe
// across calls on the same file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/error.hpp"

namespace sluice {

struct TaskSpec;
class Map;
class Value;

inline constexpr std::string_view kArtifactFile = "output.h5";

// ATTEMPT_DIR/output.h5
std::string artifact_path(const std::string& attempt_dir);

// The variable naming a parent's artifact: "SLUICE_INPUT_" + the task name in upper
// case with every character other than A-Z and 0-9 replaced by '_' ("train.2" ->
// SLUICE_INPUT_TRAIN_2).
std::string input_env_name(std::string_view task_name);

// How an artifact was made; stored as attributes on the artifact's root group.
struct Provenance {
  std::string run_id;
  std::string workflow;  // project:workflow:revision
  std::string task;      // name@version
  std::uint32_t attempt = 0;
  std::string host;
  std::int64_t started_us = 0;
  std::int64_t ended_us = 0;
  int exit_status = 0;
  std::string command;  // argv joined with spaces, or the shell string
  std::vector<std::pair<std::string, std::string>> inputs;  // (path, checksum) per input
};

// Seals the artifact an attempt left at `path`: fails with kInvalidInput and a message
// starting "bad artifact: " when it is not a readable HDF5 file; otherwise writes the
// provenance attributes and returns the file's checksum ("xxh3:<16 hex digits>") and,
// when asked (the cache wants it), its content hash, read in the same open.
struct SealedArtifact {
  std::string checksum;
  std::string content_hash;  // empty unless asked for
};
Expected<SealedArtifact> finalize_artifact(const std::string& path, const Provenance& provenance,
                                           bool hash_content = false);

// Creates the artifact at `path` holding `values`, with the provenance written in the
// same pass: what writing the values and then finalize_artifact() gives, for half the
// HDF5 work (the coordinator's path for a task that left only a results file).
// kInvalidInput (message "bad artifact: …") for a value HDF5 cannot hold.
Expected<SealedArtifact> write_sealed_artifact(const std::string& path, const Map& values,
                                               const Provenance& provenance,
                                               bool hash_content = false);

// A scalar Value (bool, int64, float64, string) as command-line text: "true", "42",
// "0.1" (shortest round-trip form), the string itself. nullopt for other types.
std::optional<std::string> scalar_text(const class Value& value);

// Hash of the values an artifact holds (keys, types, shapes, data), "xxh3:<16 hex>":
// provenance, layout and timestamps do not count. Arrays are streamed, so hashing runs
// at read speed whatever their size. The cache keys dependents on this.
Expected<std::string> artifact_content_hash(const std::string& path);
Expected<std::string> artifact_content_hash(const class ArtifactReader& reader);

// The content hash that artifact_content_hash() gives for an artifact holding exactly
// `values` (or the single `key`), computed from the values in memory: a writer that
// still holds what it wrote hashes it without reading the file back.
std::string values_content_hash(const Map& values);
std::string value_content_hash(const std::string& key, const Value& value);

// A parent of a task as {inputs.PARENT.KEY} placeholders see it: its name and its
// final artifact ("" when it wrote none), or the values it packed (read from memory).
struct InputArtifact {
  std::string name;
  std::string artifact;
  const Map* values = nullptr;
};

// True when the task's command or shell holds an {inputs.…} placeholder.
bool uses_input_placeholders(const TaskSpec& spec);

// Replaces every {inputs.PARENT.KEY} in `text` by the parent's scalar value (the parent
// is the longest name that matches, since matrix instances contain dots). False with
// `why` when a placeholder names no parent, the parent wrote no artifact or lacks the
// key, or the value is not a scalar.
bool substitute_input_values(const std::string& text, const std::vector<InputArtifact>& parents,
                             std::string& out, std::string& why);

// Checksum of a file's bytes, "xxh3:<16 hex digits>".
Expected<std::string> file_checksum(const std::string& path);

// Writes `run_h5` (atomically) with one HDF5 external link per entry: link name = task
// name, target = the artifact's root group, at a path relative to run_h5's directory.
Expected<void> write_run_view(const std::string& run_h5,
                              const std::vector<std::pair<std::string, std::string>>& links);

}  // namespace sluice
