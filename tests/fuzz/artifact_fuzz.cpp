// libFuzzer target: bytes -> an HDF5 file on disk -> ArtifactReader. Whatever the bytes,
// opening and reading every key, its info, its blocks and the attributes must return a
// value or an error: no crash, no sanitizer report, no hang.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <hdf5.h>

#include <cstdio>

#include "sluice/engine/hdf5_codec.hpp"

namespace {

const std::string& scratch_path() {
  static const std::string path =
      std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + "/sluice-fuzz-" +
      std::to_string(::getpid()) + ".h5";
  return path;
}

void read_everything(const sluice::ArtifactReader& reader) {
  for (const auto& key : reader.keys()) {
    (void)reader.info(key);
    (void)reader.get(key);
    (void)reader.read_array_blocks(
        key, 4096, [](std::uint64_t, const sluice::NdArray&) { return sluice::Expected<void>{}; });
  }
  (void)reader.get_all();
  (void)reader.attributes();
  (void)reader.get("does/not/exist");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = scratch_path();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return 0;
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);

  {
    auto reader = sluice::ArtifactReader::open(path);
    if (reader) read_everything(*reader);
  }
  // Everything the reader opened is closed again, whatever the bytes: a handle left
  // open keeps the file open in HDF5 (and the next open of the path would reuse it).
  if (const ssize_t open = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL); open > 0) {
    std::fprintf(stderr, "artifact_fuzz: %zd HDF5 objects left open\n", open);
    std::abort();
  }
  return 0;
}
