// The backends that run attempts on this machine keep the Backend contract: `local`
// (processes) and `inproc` (registered C++ functions on threads).
#include <catch2/catch.hpp>

#include <condition_variable>
#include <mutex>
#include <stdexcept>

#include "conformance/backend_conformance.hpp"
#include "inproc_backend.hpp"
#include "local_backend.hpp"
#include "sluice/function.hpp"
#include "sluice/function_args.hpp"

using namespace sluice;
using sluice::conformance::Behaviour;

TEST_CASE("the local backend keeps the Backend contract", "[conformance]") {
  conformance::Target t;
  t.name = "local";
  t.make = [] {
    BackendOptions o;
    o.cpus = 4;
    o.gpus = 0;
    o.extra["kill_grace_ms"] = "200";
    return make_local_backend(o);
  };
  conformance::check_backend_contract(t);
}

namespace {

// The "runs until killed" function: a running inproc function cannot be killed, so it
// waits until the test releases it.
std::mutex hang_mu;
std::condition_variable hang_cv;
bool hang_released = false;

void register_conformance_functions() {
  auto add = [](const char* name, std::function<Value()> body) {
    FunctionInfo f;
    f.name = name;
    f.version = "1";
    f.invoke = [body](TaskContext&, std::vector<Value>&) { return body(); };
    register_function(std::move(f));
  };
  add("conformance_ok", [] { return Value(std::int64_t{1}); });
  add("conformance_fail", []() -> Value { throw std::runtime_error("failing on purpose"); });
  add("conformance_hang", [] {
    std::unique_lock<std::mutex> lock(hang_mu);
    hang_cv.wait_for(lock, std::chrono::seconds(60), [] { return hang_released; });
    return Value(std::int64_t{0});
  });
}

}  // namespace

TEST_CASE("the inproc backend keeps the Backend contract", "[conformance]") {
  register_conformance_functions();
  {
    std::lock_guard<std::mutex> lock(hang_mu);
    hang_released = false;
  }
  conformance::Target t;
  t.name = "inproc";
  t.make = [] {
    BackendOptions o;
    o.cpus = 4;
    return make_inproc_backend(o);
  };
  t.spec = [](Behaviour b, const std::string& name) {
    TaskSpec s;
    s.name = s.group = name;
    s.version = "1";
    s.function = b == Behaviour::kSucceeds ? "conformance_ok@1"
                 : b == Behaviour::kFails  ? "conformance_fail@1"
                                           : "conformance_hang@1";
    s.arguments = encode_arguments({});
    return s;
  };
  t.release = [] {
    {
      std::lock_guard<std::mutex> lock(hang_mu);
      hang_released = true;
    }
    hang_cv.notify_all();
  };
  t.kills_running = false;  // documented: a running function completes
  conformance::check_backend_contract(t);
}
