// The C++ SDK without processes: codecs, argument encoding, Flow -> Workflow, the stored
// definition, configurations, and whole runs on the inproc backend.
#include <catch2/catch.hpp>
#include <filesystem>
#include <random>

#include "inproc_backend.hpp"
#include "sluice/engine/coordinator.hpp"
#include "sluice/engine/run_lock.hpp"
#include "sluice/engine/sdk_definition.hpp"
#include "sluice/sdk.hpp"
#include "support/scratch_dir.hpp"

namespace {

struct Point {
  double x = 0, y = 0;
  friend bool operator==(const Point&, const Point&) = default;
};

}  // namespace

template <>
struct sluice::Codec<Point> {
  static sluice::Value encode(const Point& p) { return sluice::Map{{"x", p.x}, {"y", p.y}}; }
  static Point decode(const sluice::Value& v) {
    const auto& m = v.get<sluice::Map>();
    return {m.find("x")->get<double>(), m.find("y")->get<double>()};
  }
};

namespace {

double add(double a, double b) {
  return a + b;
}
double total(const std::vector<double>& xs) {
  double s = 0;
  for (double x : xs) s += x;
  return s;
}
Point midpoint(const Point& a, const Point& b) {
  return {(a.x + b.x) / 2, (a.y + b.y) / 2};
}
void noop() {}
int fails(int) {
  throw std::runtime_error("no good");
}

const auto add_t = sluice::task("add", "1", &add);
const auto total_t = sluice::task("total", "2", &total);
const auto mid_t = sluice::task("midpoint", "1", &midpoint);
const auto noop_t = sluice::task("noop", "1", &noop);
const auto fails_t = sluice::task("fails", "1", &fails);

}  // namespace

TEST_CASE("codecs round-trip built-in and user types", "[sdk]") {
  using sluice::from_value;
  using sluice::to_value;
  CHECK(from_value<int>(to_value(42)) == 42);
  CHECK(from_value<double>(to_value(2.5)) == 2.5);
  CHECK(from_value<std::string>(to_value(std::string("hi"))) == "hi");
  std::vector<double> v{1, 2, 3};
  CHECK(to_value(v).is<sluice::NdArray>());
  CHECK(from_value<std::vector<double>>(to_value(v)) == v);
  std::vector<std::string> s{"a", "b"};
  CHECK(from_value<std::vector<std::string>>(to_value(s)) == s);
  std::map<std::string, int> m{{"a", 1}, {"b", 2}};
  CHECK((from_value<std::map<std::string, int>>(to_value(m)) == m));
  CHECK(from_value<Point>(to_value(Point{1, 2})) == Point{1, 2});
  // A gathered list of numbers becomes a vector too.
  CHECK(from_value<std::vector<double>>(sluice::Value(sluice::List{1.0, 2.0})) ==
        std::vector<double>{1, 2});
}

TEST_CASE("arguments and values survive their encoded form", "[sdk]") {
  sluice::Argument lit;
  lit.value = sluice::Map{{"a", sluice::NdArray(std::vector<float>{1, 2, 3, 4}, {2, 2})},
                          {"b", sluice::List{true, nullptr, "x", std::int64_t{-7}}}};
  sluice::Argument ref;
  ref.kind = sluice::Argument::Kind::kGather;
  ref.refs = {{0, "p.1"}, {1, "q"}};
  auto text = sluice::encode_arguments({lit, ref});
  auto back = sluice::decode_arguments(text);
  REQUIRE(back);
  REQUIRE(back->size() == 2);
  CHECK((*back)[0].value == lit.value);
  CHECK((*back)[1].refs[1].parent == "q");
  CHECK_FALSE(sluice::decode_arguments("!!notbase64"));
  CHECK_FALSE(sluice::decode_arguments(text.substr(0, text.size() - 4)));
}

TEST_CASE("a flow becomes a workflow with named tasks, edges and a stable hash", "[sdk]") {
  auto make = [](double lr) {
    sluice::Flow flow("tune", "tests");
    std::vector<sluice::Future<double>> parts;
    for (int i = 0; i < 3; ++i) parts.push_back(flow.call(add_t, i, lr));
    auto sub = sluice::workflow("inner", [](sluice::Flow& f, sluice::Future<double> x) {
      return f.call(sluice::opts{.gpus = 1, .executor = "gpu", .retries = 2}, add_t, x, 1.0);
    });
    auto t = flow.call(total_t, flow.gather(parts));
    flow.call(sub, t);
    return flow.build();
  };
  sluice::Workflow wf = make(0.5);
  REQUIRE(wf.tasks.size() == 5);
  CHECK(wf.tasks[0].name == "add");
  CHECK(wf.tasks[1].name == "add.1");
  CHECK(wf.tasks[2].name == "add.2");
  CHECK(wf.tasks[3].name == "total");
  CHECK(wf.tasks[3].after == std::vector<sluice::TaskId>{0, 1, 2});
  CHECK(wf.tasks[4].name == "inner.add");
  CHECK(wf.tasks[4].group == "inner");
  CHECK(wf.tasks[4].executor == "gpu");
  CHECK(wf.tasks[4].gpus == 1);
  CHECK(wf.tasks[4].retries == 2);
  CHECK(wf.tasks[4].function == "add@1");
  CHECK(wf.tasks[4].command[1] == "__sluice_worker");
  CHECK(make(0.5).content_hash == wf.content_hash);
  CHECK(make(0.25).content_hash != wf.content_hash);

  auto back = sluice::load_sdk_definition(wf.text, "/tmp");
  REQUIRE(back);
  CHECK(back->content_hash == wf.content_hash);
  CHECK(back->tasks[3].after == wf.tasks[3].after);
  CHECK(back->tasks[4].arguments == wf.tasks[4].arguments);
}

TEST_CASE("configurations: built-ins, saved TOML files, backend options", "[sdk]") {
  sluice::testing::ScratchDir home;
  CHECK(sluice::Config::find("inproc", home.str())->backend == "inproc");
  CHECK(sluice::Config::find("local", home.str())->backend == "local");
  CHECK_FALSE(sluice::Config::find("nope", home.str()));
  sluice::Config c{
      "big", "local", {{"cpus", "3"}, {"executors", "cpu,gpu"}, {"kill_grace_ms", "5"}}};
  REQUIRE(c.save(home.str()));
  auto back = sluice::Config::find("big", home.str());
  REQUIRE(back);
  CHECK(back->backend == "local");
  auto o = back->backend_options();
  REQUIRE(o);
  CHECK(o->cpus == 3);
  CHECK(o->executors == std::vector<std::string>{"cpu", "gpu"});
  CHECK(o->extra.at("kill_grace_ms") == "5");
  CHECK(sluice::Config::list(home.str()) == std::vector<std::string>{"big"});
  CHECK(sluice::Config::remove("big", home.str()));
  CHECK_FALSE(sluice::Config::remove("big", home.str()));
  auto table = sluice::Config::parse("t", "backend = \"slurm\"\n[options]\npartition = \"gpu\"\n");
  REQUIRE(table);
  CHECK(table->options.at("partition") == "gpu");
}

TEST_CASE("an inproc run passes results in memory and keeps them readable by id", "[sdk]") {
  sluice::register_inproc_backend();
  sluice::testing::ScratchDir home;
  sluice::Flow flow("points", "tests");
  auto a = flow.call(mid_t, Point{0, 0}, Point{2, 2});
  auto b = flow.call(mid_t, a, Point{3, 1});
  std::vector<sluice::Future<double>> xs;
  for (int i = 0; i < 10; ++i) xs.push_back(flow.call(add_t, i, 0.5));
  flow.call(total_t, flow.gather(xs));
  flow.call(noop_t);
  (void)b;
  sluice::RunOptions ro;
  ro.home = home.str();
  auto run = sluice::WorkflowRun::prepare(flow, sluice::Config::load("inproc", home.str()), ro);
  CHECK(run.get_status() == sluice::RunState::kSubmitted);
  CHECK(run.run() == sluice::RunState::kSucceeded);

  auto other = sluice::WorkflowRun::by_id(run.id(), home.str());
  CHECK(other.get_status() == sluice::RunState::kSucceeded);
  auto results = other.get_results(false);
  REQUIRE(results.size() == 3);  // midpoint.1, total, noop
  CHECK(sluice::from_value<Point>(*results.find("midpoint.1")) == Point{2, 1});
  CHECK(results.find("total")->get<double>() == 50.0);
  CHECK(results.find("noop")->is_null());
  CHECK(other.artifact("total") != "");
  CHECK(other.artifact("noop") == "");
}

TEST_CASE("an inproc function that throws fails its attempt with the message", "[sdk]") {
  sluice::register_inproc_backend();
  sluice::testing::ScratchDir home;
  sluice::Flow flow("failing", "tests");
  auto f = flow.call(sluice::opts{.retries = 1}, fails_t, 1);
  flow.call(add_t, f, 1.0);
  sluice::RunOptions ro;
  ro.home = home.str();
  auto run = sluice::WorkflowRun::prepare(flow, sluice::Config::load("inproc", home.str()), ro);
  CHECK(run.run() == sluice::RunState::kFailed);
  auto tasks = run.tasks();
  REQUIRE(tasks.size() == 2);
  CHECK(tasks[0].state == sluice::TaskState::kFailed);
  CHECK(tasks[0].attempts == 2);
  CHECK(tasks[0].reason.find("no good") != std::string::npos);
  CHECK(tasks[1].state == sluice::TaskState::kSkipped);
  CHECK(run.logs("fails", true).find("no good") != std::string::npos);
}

TEST_CASE("a prepared run executes later from its stored definition", "[sdk]") {
  sluice::register_inproc_backend();
  sluice::testing::ScratchDir home;
  sluice::Flow flow("later", "tests");
  flow.call(add_t, flow.call(add_t, 1.0, 2.0), 3.0);
  sluice::RunOptions ro;
  ro.home = home.str();
  std::string id =
      sluice::WorkflowRun::prepare(flow, sluice::Config::load("inproc", home.str()), ro).id();
  auto run = sluice::WorkflowRun::by_id(id, home.str());
  CHECK(run.run() == sluice::RunState::kSucceeded);
  CHECK(run.get_result("add.1").get<double>() == 6.0);
}

TEST_CASE("an SDK definition's text reads back field for field, escapes included", "[sdk]") {
  sluice::Workflow wf;
  wf.name = "esc";
  wf.project = "tests";
  wf.base_dir = "/tmp/a \"dir\"";
  for (int i = 0; i < 2; ++i) {
    sluice::TaskSpec t;
    t.name = "t" + std::to_string(i);
    t.group = "g";
    t.function = "f@1";
    t.version = "2";
    t.command = {"/bin/prog", "__sluice_worker", t.function, t.arguments};
    t.arguments = std::string("q\"b\\s\nn\tt\x01\x7f\xc3\xa9") + std::to_string(i);
    t.cpus = 3;
    t.gpus = i;
    t.memory_mib = 512;
    t.executor = "gpu";
    t.retries = 4;
    t.max_exec_time = sluice::Millis(1500);
    t.max_wait_time = sluice::Millis(2500);
    if (i == 1) t.after = {0};
    wf.index.emplace(t.name, static_cast<sluice::TaskId>(i));
    wf.tasks.push_back(t);
  }
  wf.content_hash = sluice::sdk_content_hash(wf);
  const std::string text = sluice::sdk_definition_text(wf);
  auto back = sluice::load_sdk_definition(text, "/elsewhere");
  REQUIRE(back);
  CHECK(back->name == wf.name);
  CHECK(back->project == wf.project);
  CHECK(back->base_dir == wf.base_dir);
  CHECK(back->content_hash == wf.content_hash);
  REQUIRE(back->tasks.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    const sluice::TaskSpec& a = wf.tasks[i];
    const sluice::TaskSpec& b = back->tasks[i];
    CHECK(b.name == a.name);
    CHECK(b.group == a.group);
    CHECK(b.function == a.function);
    CHECK(b.version == a.version);
    CHECK(b.arguments == a.arguments);
    CHECK(b.command.front() == "/bin/prog");
    CHECK(b.after == a.after);
    CHECK(b.cpus == a.cpus);
    CHECK(b.gpus == a.gpus);
    CHECK(b.memory_mib == a.memory_mib);
    CHECK(b.executor == a.executor);
    CHECK(b.retries == a.retries);
    CHECK(b.max_exec_time == a.max_exec_time);
    CHECK(b.max_wait_time == a.max_wait_time);
  }
}
