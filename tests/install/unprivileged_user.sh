# Sourced by the install tests: an unprivileged user to run things as, the way a cluster
# user without root would. Needs root to create it; otherwise the test is skipped.
#
#   need_unprivileged_user      sets TEST_USER (created once, kept: tests run in parallel)
#   as_test_user CMD...         runs CMD as TEST_USER, with a clean environment but for
#                               the variables passed as NAME=VALUE before CMD (env syntax)

need_unprivileged_user() {
  if (( EUID != 0 )); then
    echo "SLUICE-SKIP: creating an unprivileged user needs root"
    exit 0
  fi
  TEST_USER=sluice-install-test
  if ! id "$TEST_USER" >/dev/null 2>&1; then
    # Another test may create it at the same moment: only its existence matters.
    useradd --system --no-create-home --shell /bin/sh "$TEST_USER" 2>/dev/null ||
      id "$TEST_USER" >/dev/null
  fi
}

as_test_user() {
  setpriv --reuid "$TEST_USER" --regid "$(id -g "$TEST_USER")" --init-groups \
    env -i LANG=C.UTF-8 "$@"
}
