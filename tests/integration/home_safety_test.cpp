// A Sluice home in a place other users can write (a shared project space, /tmp on a login
// node) must not let them redirect what Sluice creates: a writer refuses a home that
// another user could change, never follows a link planted where store.db or runs/ go, and
// creates nothing at a link's target (docs/failure-semantics.md, "A home in a shared place").
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>

#include "support/cli_runner.hpp"
#include "support/skip.hpp"

using namespace sluice::testing;
namespace fs = std::filesystem;

namespace {

constexpr const char* kWorkflow = "[workflow]\nname = \"x\"\n[tasks.a]\nshell = \"true\"\n";
constexpr const char* kNeighbour = "sluice-neighbour";

// The uid and gid of an unprivileged user made for the test (root only).
bool neighbour(uid_t& uid, gid_t& gid) {
  if (::getpwnam(kNeighbour) == nullptr) {
    const std::string cmd = std::string("useradd --no-create-home --shell /usr/sbin/nologin ") +
                            kNeighbour + " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0 && ::getpwnam(kNeighbour) == nullptr) return false;
  }
  const passwd* pw = ::getpwnam(kNeighbour);
  if (pw == nullptr) return false;
  uid = pw->pw_uid;
  gid = pw->pw_gid;
  return true;
}

bool empty_dir(const fs::path& p) {
  return fs::is_directory(p) && fs::directory_iterator(p) == fs::directory_iterator();
}

}  // namespace

TEST_CASE("links planted by another user in a shared home are refused and never followed",
          "[integration][home]") {
  if (::geteuid() != 0) SLUICE_SKIP("needs root to act as another user");
  uid_t uid = 0;
  gid_t gid = 0;
  if (!neighbour(uid, gid)) SLUICE_SKIP("cannot create the user " + std::string(kNeighbour));

  ScratchDir dir;
  write_file(dir / "wf.toml", kWorkflow);
  // The neighbour's directory, where they would like root's run directories to go, and a
  // path of their choosing for root's store.
  const fs::path theirs = dir / "theirs";
  fs::create_directory(theirs);
  REQUIRE(::chown(theirs.c_str(), uid, gid) == 0);
  ::chmod(theirs.c_str(), 0777);
  const fs::path victim = dir / "victim.db";

  SECTION("in a world-writable directory") {
    const fs::path shared = dir / "shared";
    fs::create_directory(shared);
    ::chmod(shared.c_str(), 0777);
    fs::create_symlink(victim, shared / "store.db");
    fs::create_directory_symlink(theirs, shared / "runs");
    REQUIRE(::lchown((shared / "store.db").c_str(), uid, gid) == 0);
    REQUIRE(::lchown((shared / "runs").c_str(), uid, gid) == 0);

    auto r = run_sluice({"run", "--home", shared.string(), "wf.toml"}, dir.path());
    INFO(r.err);
    CHECK(r.exit_code == 3);
    CHECK(r.err.find("refusing the Sluice home") != std::string::npos);
    CHECK(r.err.find("writable by every user") != std::string::npos);
    CHECK_FALSE(fs::exists(fs::symlink_status(victim)));
    CHECK(empty_dir(theirs));
  }

  SECTION("in a private directory where the links were left behind") {
    // The home is root's and closed now, but the neighbour's links are still in it.
    const fs::path home = dir / "home";
    fs::create_directory(home);
    fs::create_symlink(victim, home / "store.db");
    REQUIRE(::lchown((home / "store.db").c_str(), uid, gid) == 0);
    auto r = run_sluice({"run", "--home", home.string(), "wf.toml"}, dir.path());
    INFO(r.err);
    CHECK(r.exit_code == 3);
    CHECK(r.err.find("store.db is a symbolic link") != std::string::npos);
    CHECK_FALSE(fs::exists(fs::symlink_status(victim)));
    // A reader does not follow it either.
    auto ps = run_sluice({"ps", "--home", home.string()}, dir.path());
    CHECK(ps.exit_code == 3);
    CHECK(ps.err.find("symbolic link") != std::string::npos);

    fs::remove(home / "store.db");
    fs::create_directory_symlink(theirs, home / "runs");
    REQUIRE(::lchown((home / "runs").c_str(), uid, gid) == 0);
    r = run_sluice({"run", "--home", home.string(), "wf.toml"}, dir.path());
    INFO(r.err);
    CHECK(r.exit_code == 3);
    CHECK(r.err.find("runs is a symbolic link") != std::string::npos);
    CHECK(empty_dir(theirs));
    CHECK_FALSE(fs::exists(home / "store.db"));
  }

  SECTION("a home owned by another user") {
    const fs::path home = dir / "home";
    fs::create_directory(home);
    ::chmod(home.c_str(), 0755);
    REQUIRE(::chown(home.c_str(), uid, gid) == 0);
    auto r = run_sluice({"run", "--home", home.string(), "wf.toml"}, dir.path());
    INFO(r.err);
    CHECK(r.exit_code == 3);
    CHECK(r.err.find("owned by another user") != std::string::npos);
    CHECK(empty_dir(home));
  }
}

TEST_CASE("a home writable by others is refused with the reason, and a private one runs",
          "[integration][home]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", kWorkflow);
  const fs::path home = dir / "home";
  fs::create_directory(home);

  ::chmod(home.c_str(), 0777);
  auto r = run_sluice({"run", "--home", home.string(), "wf.toml"}, dir.path());
  INFO(r.err);
  CHECK(r.exit_code == 3);
  CHECK(r.err.find("is writable by every user (mode 0777)") != std::string::npos);
  CHECK(empty_dir(home));

  ::chmod(home.c_str(), 0770);
  r = run_sluice({"run", "--home", home.string(), "wf.toml"}, dir.path());
  CHECK(r.exit_code == 3);
  CHECK(r.err.find("writable by its group") != std::string::npos);
  CHECK(empty_dir(home));

  ::chmod(home.c_str(), 0700);
  r = run_sluice({"run", "--home", home.string(), "wf.toml"}, dir.path());
  INFO(r.err);
  CHECK(r.exit_code == 0);
}

TEST_CASE("a home reached through the user's own link, or made anew, still runs",
          "[integration][home]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", kWorkflow);
  fs::create_directory(dir / "scratch");
  fs::create_directory_symlink(dir / "scratch", dir / "home");
  auto r = run_sluice({"run", "--home", (dir / "home").string(), "wf.toml"}, dir.path());
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(fs::is_regular_file(dir / "scratch" / "store.db"));
  auto ps = run_sluice({"ps", "--home", (dir / "home").string()}, dir.path());
  CHECK(ps.exit_code == 0);

  r = run_sluice({"run", "--home", (dir / "new" / "deeper").string(), "wf.toml"}, dir.path());
  INFO(r.err);
  CHECK(r.exit_code == 0);
  struct stat st {};
  REQUIRE(::stat((dir / "new" / "deeper").c_str(), &st) == 0);
  CHECK((st.st_mode & 077) == 0);
}
