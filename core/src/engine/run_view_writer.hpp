// The run's view run.h5, written while the run goes on: each packed task's group is
// added on a thread of its own as the task's values arrive, so the end of a run pays
// for the provenance table and the close, not for one HDF5 group and dataset per task
// (about 25 us each on a 2-core VM: at 10,000 value-returning tasks the view was most of
// the run's wall time). The HDF5 library serializes calls (one global lock), so the
// coordinator's own HDF5 calls stay correct while it writes.
//
// Values arrive before their attempt's success is durable; finish() is given the final
// contents and reconciles (removes what did not succeed, adds what was not streamed: a
// resumed run's restored tasks). A crash leaves RUN/run.h5.tmp-PID, which the next
// writer for the run removes.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>

#include "sluice/engine/packed_file.hpp"
#include "sluice/value.hpp"

namespace sluice {

class RunViewWriter {
 public:
  // `path`: the view's final name (RUN/run.h5). Starts nothing until the first add().
  explicit RunViewWriter(std::string path);
  ~RunViewWriter();  // stops the thread; an unfinished view is removed
  RunViewWriter(const RunViewWriter&) = delete;
  RunViewWriter& operator=(const RunViewWriter&) = delete;

  // Queues task `name`'s values (replacing any earlier ones of the same name).
  void add(const std::string& name, std::shared_ptr<const Map> values);

  // Waits for the queue, makes the file hold exactly `contents` and renames it into place.
  Expected<void> finish(const PackedFileContents& contents);

 private:
  void loop();
  void stop();

  std::string path_;
  std::thread thread_;
  std::mutex mu_;
  // State below is protected by mu_.
  std::condition_variable cv_;
  std::deque<std::pair<std::string, std::shared_ptr<const Map>>> queue_;
  bool stopping_ = false;
  bool busy_ = false;
  // The writer thread's own (read by finish() once the thread has stopped).
  std::optional<PackedFileWriter> file_;
  bool failed_ = false;
  std::unordered_map<std::string, std::shared_ptr<const Map>> written_;
};

}  // namespace sluice
