// libFuzzer target: bytes from a stranger on the pilot port. The bytes are split into
// frames (as a connection does before and after its handshake) and every frame is given
// to both halves of the handshake, to the decoder of every message, and to the opening
// of sealed frames. Any input must be taken or refused, without a crash, a sanitizer
// report, a hang, memory beyond the frame limits, or a handshake that accepts.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pilot_crypto.hpp"
#include "pilot_handshake.hpp"
#include "pilot_wire.hpp"

using namespace sluice::pilot;

namespace {

const Key& fixed_key() {
  static const Key key = [] {
    (void)init_crypto();
    return *Key::from_hex(std::string(64, '7'));
  }();
  return key;
}

void decode_everything(std::string_view payload) {
  (void)decode_hello(payload);
  (void)decode_launch(payload);
  std::vector<Launch> launches;
  (void)decode_launches(payload, launches);
  (void)decode_kill(payload);
  (void)decode_welcome(payload);
  (void)decode_text(payload);
  std::vector<sluice::Completion> done;
  (void)decode_completions(payload, done);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Key& key = fixed_key();
  const char* bytes = reinterpret_cast<const char*>(data);
  ServerHandshake server(key);
  ClientHandshake client(key);
  bool server_done = false, client_done = false;
  for (const std::uint32_t limit : {kMaxHandshakeFrame, kMaxFrame}) {
    FrameBuffer frames(limit);
    // In two pieces, as reads split a stream.
    frames.append(bytes, size / 2);
    frames.append(bytes + size / 2, size - size / 2);
    MsgType type;
    std::string_view payload;
    bool bad = false;
    while (frames.next(type, payload, bad)) {
      decode_everything(payload);
      std::string reply, why;
      if (!server_done) {
        const AuthStep step = server.on_frame(type, payload, reply, why);
        // Accepting needs a proof made with the key over the server's fresh nonce.
        if (step == AuthStep::kAccepted) __builtin_trap();
        server_done = step == AuthStep::kRefused;
      }
      bool impostor = false;
      if (!client_done) {
        const AuthStep step = client.on_frame(type, payload, reply, why, impostor);
        if (step == AuthStep::kAccepted) __builtin_trap();
        client_done = step == AuthStep::kRefused;
      }
    }
  }
  // The same bytes as sealed frame bodies: none opens under a key they were not sealed
  // with, and a cipher that refused one refuses the rest.
  const Nonce zero{};
  FrameCipher opener(key, Role::kWorker, zero, zero);
  FrameBuffer sealed(kMaxFrame);
  sealed.append(bytes, size);
  std::string_view body;
  bool bad = false;
  while (sealed.next_body(body, bad)) {
    std::uint8_t type = 0;
    std::string plain;
    if (opener.open(body, type, plain)) __builtin_trap();
  }
  // And what the fuzzer sent, sealed and opened again, decodes as it did in the clear.
  FrameCipher a(key, Role::kCoordinator, zero, zero), b(key, Role::kCoordinator, zero, zero);
  const std::string frame = a.seal(size > 0 ? data[0] : 0, std::string_view(bytes, size));
  FrameBuffer back(kMaxFrame);
  back.append(frame.data(), frame.size());
  std::uint8_t type = 0;
  std::string plain;
  if (!back.next_body(body, bad) || !b.open(body, type, plain) ||
      plain != std::string_view(bytes, size))
    __builtin_trap();
  return 0;
}
