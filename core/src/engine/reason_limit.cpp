#include "engine/reason_limit.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "sluice/engine/file_modes.hpp"

namespace sluice {
namespace {

bool append_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

bool keep_full_text(const std::string& reason, const std::string& attempt_dir) {
  if (attempt_dir.empty()) return false;
  const std::string path = attempt_dir + "/stderr";
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
                        file_modes().file);
  if (fd < 0) return false;
  const bool ok = append_all(fd, "\nsluice: the full reason of this attempt:\n" + reason + "\n");
  ::close(fd);
  return ok;
}

}  // namespace

void bound_reason(std::string& reason, const std::string& attempt_dir) {
  if (reason.size() <= kMaxReasonBytes) return;
  const bool kept = keep_full_text(reason, attempt_dir);
  const std::size_t total = reason.size();
  std::size_t cut = kMaxReasonBytes - 160;  // room for the note
  // Back to the start of a UTF-8 character: a continuation byte is 10xxxxxx.
  while (cut > 0 && (static_cast<unsigned char>(reason[cut]) & 0xc0) == 0x80) --cut;
  reason.resize(cut);
  reason += "... (" + std::to_string(total - cut) + " more bytes cut; " +
            (kept ? "the full reason is at the end of the attempt's stderr)"
                  : "the full reason was not kept)");
}

}  // namespace sluice
