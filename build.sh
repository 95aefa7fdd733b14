#!/usr/bin/env bash
# One entry point for the native core, the CUDA plug-in and the C# layer.
#   ./build.sh deps       install what is missing (Debian/Ubuntu as root; otherwise prints the commands)
#   ./build.sh build      native (CMake + Ninja) and managed (dotnet build Interop.sln)
#   ./build.sh test       deps + build, bindings drift check, ctest, ctest under ASan+UBSan, dotnet test
#   ./build.sh run [-- ARGS]   deps + build, then the `infinite` CLI (default: serve the demo model on 127.0.0.1:8000)
#   ./build.sh bench      native micro-benchmarks
#   ./build.sh pack       NuGet packages Infinite + Infinite.Native (runtimes/linux-x64/native/libinfinite*.so) in artifacts/packages
#   ./build.sh bindings   regenerate the P/Invoke declarations and layout tests from infinite.h
#   ./build.sh gpu-check  on a GPU machine without dotnet: CUDA build, native tests, benchmark, a short table
#   ./build.sh clean      remove build/ and artifacts/
# Environment: INFINITE_CONFIG (Release), INFINITE_JOBS (nproc), INFINITE_CUDA (AUTO|ON|OFF),
#              INFINITE_SKIP_SANITIZE=1 to skip the sanitizer pass of `test`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
CONFIG="${INFINITE_CONFIG:-Release}"
JOBS="${INFINITE_JOBS:-$(nproc)}"
NATIVE_BUILD="$ROOT/build/native"
ASAN_BUILD="$ROOT/build/native-asan"
GENERATOR="bindings/Infinite.Bindings.Generator"
RSP="bindings/infinite.rsp"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

# Debian package names of everything the project builds and tests with.
DEBIAN_PACKAGES=(cmake ninja-build g++ clang-14 libclang1-14 pkg-config libgtest-dev libgmock-dev
  libbenchmark-dev libopenblas-dev libopenmpi-dev openmpi-bin)
CUDA_PACKAGE=nvidia-cuda-toolkit

is_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# nvidia-cuda-toolkit lives in Debian's contrib/non-free (Ubuntu: multiverse); enable them when missing.
enable_cuda_components() {
  local changed=0 f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    if grep -q '^Components:.*\bmain\b' "$f" && ! grep -q '^Components:.*\bcontrib\b' "$f"; then
      sed -i -E 's/^(Components:.*\bmain\b.*)$/\1 contrib non-free/' "$f"
      changed=1
    fi
  done
  if [ -f /etc/apt/sources.list ] && grep -qE '^deb .* main' /etc/apt/sources.list &&
     ! grep -qE '^deb .* contrib' /etc/apt/sources.list; then
    sed -i -E 's/^(deb .* main)(.*)$/\1\2 contrib non-free/' /etc/apt/sources.list
    changed=1
  fi
  [ "$changed" = 1 ] && echo "enabled the contrib and non-free components for $CUDA_PACKAGE"
  return 0
}

cmd_deps() {
  step "deps"
  local missing=() p
  for p in "${DEBIAN_PACKAGES[@]}"; do is_installed "$p" || missing+=("$p"); done
  local want_cuda=1
  [ "${INFINITE_CUDA:-AUTO}" = OFF ] && want_cuda=0
  if [ "$want_cuda" = 1 ] && ! command -v nvcc >/dev/null && ! is_installed "$CUDA_PACKAGE"; then
    missing+=("$CUDA_PACKAGE")
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null; then
      echo "Not a Debian/Ubuntu machine. Install the equivalents of: ${missing[*]}"
      die "missing dependencies"
    fi
    if [ "$(id -u)" != 0 ]; then
      echo "Missing: ${missing[*]}. Run as root:"
      echo "  sudo sed -i -E 's/^(Components:.*main.*)\$/\\1 contrib non-free/' /etc/apt/sources.list.d/debian.sources"
      echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
      die "missing dependencies"
    fi
    [[ " ${missing[*]} " == *" $CUDA_PACKAGE "* ]] && enable_cuda_components
    echo "installing: ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    echo "native dependencies present"
  fi
  command -v dotnet >/dev/null || die "the .NET 10 SDK is missing: see https://learn.microsoft.com/dotnet/core/install/linux-debian"
  local major
  major="$(dotnet --version | cut -d. -f1)"
  [ "$major" -ge 10 ] || die "the .NET SDK is $(dotnet --version); Infinite needs 10 or newer"
  echo "dotnet $(dotnet --version)"
}

configure_native() { # $1 build dir, then extra CMake arguments
  local dir="$1"; shift
  cmake -G Ninja -S native -B "$dir" -DCMAKE_BUILD_TYPE="$CONFIG" \
    -DINFINITE_CUDA="${INFINITE_CUDA:-AUTO}" "$@" >"$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log"; die "CMake configure failed ($dir)"; }
  grep -E '^-- Infinite' "$dir.configure.log" || true
}

cmd_build_native() {
  step "native build ($CONFIG, $JOBS jobs)"
  mkdir -p build
  configure_native "$NATIVE_BUILD"
  cmake --build "$NATIVE_BUILD" -j "$JOBS"
}

cmd_build() {
  cmd_build_native
  step "managed build"
  dotnet build Interop.sln -c "$CONFIG" -nologo -v quiet -clp:ErrorsOnly
}

cmd_bindings() {
  step "bindings: regenerate from native/include/infinite/infinite.h"
  dotnet run --project "$GENERATOR" -c "$CONFIG" -- "@$RSP"
}

# Totals across every runner, printed as the last line of `test`.
PASSED=0; FAILED=0; SKIPPED=0

count_ctest() { # $1 log of a ctest run
  local line total failed skipped
  line="$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$1" | tail -1)" || true
  [ -n "$line" ] || { FAILED=$((FAILED + 1)); echo "ctest printed no summary"; return; }
  failed="$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")"
  total="$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")"
  skipped="$(grep -cE '\(Skipped\)$' "$1" || true)"
  PASSED=$((PASSED + total - failed - skipped)); FAILED=$((FAILED + failed)); SKIPPED=$((SKIPPED + skipped))
}

count_dotnet() { # $1 log of a dotnet test run
  local line n
  while IFS= read -r line; do
    n="$(sed -nE 's/.*Failed: +([0-9]+).*/\1/p' <<<"$line")"; FAILED=$((FAILED + ${n:-0}))
    n="$(sed -nE 's/.*Passed: +([0-9]+).*/\1/p' <<<"$line")"; PASSED=$((PASSED + ${n:-0}))
    n="$(sed -nE 's/.*Skipped: +([0-9]+).*/\1/p' <<<"$line")"; SKIPPED=$((SKIPPED + ${n:-0}))
  done < <(grep -E '^(Passed|Failed)! +- Failed: ' "$1" || true)
}

cmd_test() {
  cmd_deps
  cmd_build
  local logs="$ROOT/build/test-logs" status=0
  mkdir -p "$logs"

  step "bindings drift check (the committed generated files must equal a fresh generation)"
  if dotnet run --project "$GENERATOR" -c "$CONFIG" --no-build -- "@$RSP" --check; then
    PASSED=$((PASSED + 1))
  else
    FAILED=$((FAILED + 1)); status=1
  fi

  step "native tests (ctest)"
  ctest --test-dir "$NATIVE_BUILD" --output-on-failure -j "$JOBS" 2>&1 | tee "$logs/ctest.log" || status=1
  count_ctest "$logs/ctest.log"

  if [ "${INFINITE_SKIP_SANITIZE:-0}" != 1 ]; then
    step "native tests under AddressSanitizer + UndefinedBehaviorSanitizer"
    configure_native "$ASAN_BUILD" -DINFINITE_SANITIZE=ON -DINFINITE_CUDA=OFF
    cmake --build "$ASAN_BUILD" -j "$JOBS"
    ctest --test-dir "$ASAN_BUILD" --output-on-failure -j "$JOBS" 2>&1 | tee "$logs/ctest-asan.log" || status=1
    count_ctest "$logs/ctest-asan.log"
  fi

  step "managed tests (dotnet test)"
  dotnet test Interop.sln -c "$CONFIG" --no-build -nologo 2>&1 | tee "$logs/dotnet-test.log" || status=1
  count_dotnet "$logs/dotnet-test.log"

  [ "$FAILED" -gt 0 ] && status=1
  echo
  if [ "$SKIPPED" -gt 0 ]; then echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"; else echo "$PASSED passed, $FAILED failed"; fi
  return "$status"
}

cmd_run() {
  cmd_deps
  cmd_build
  local cli=(dotnet run --project src/Infinite.Cli -c "$CONFIG" --no-build --)
  if [ $# -gt 0 ]; then
    step "infinite $*"
    "${cli[@]}" "$@"
    return
  fi
  step "infinite serve (the built-in demo model on http://127.0.0.1:8000; Ctrl+C stops it)"
  cat <<'USAGE'
The demo model has RANDOM weights: the server works, its text is gibberish. For real text:
  ./build.sh run -- serve --model /path/to/model.gguf        (or a Hugging Face folder)

Try it from another terminal once the banner shows:
  curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \
    -d '{"model": "infinite-demo-12m-f32-seed1.gguf", "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 32}'

Or from C# (package OpenAI):
  var client = new OpenAI.Chat.ChatClient("infinite-demo-12m-f32-seed1.gguf", new System.ClientModel.ApiKeyCredential("none"),
      new OpenAI.OpenAIClientOptions { Endpoint = new Uri("http://127.0.0.1:8000/v1") });
  Console.WriteLine((await client.CompleteChatAsync("Hello!")).Value.Content[0].Text);

USAGE
  "${cli[@]}" serve
}

cmd_bench() {
  cmd_build_native
  step "native benchmarks"
  "$NATIVE_BUILD/bin/infinite_bench" "$@"
}

# Infinite.Native carries libinfinite*.so under runtimes/linux-x64/native; Infinite depends on it.
# INFINITE_VERSION overrides the version of Directory.Build.props (e.g. 0.2.0-preview.1).
cmd_pack() {
  cmd_build
  step "pack"
  [ -f "$NATIVE_BUILD/lib/libinfinite.so" ] || die "no $NATIVE_BUILD/lib/libinfinite.so to pack"
  local version=()
  [ -n "${INFINITE_VERSION:-}" ] && version=("-p:Version=$INFINITE_VERSION")
  local project
  for project in bindings/Infinite.Native src/Infinite; do
    dotnet pack "$project" -c "$CONFIG" --no-build -nologo -o artifacts/packages "${version[@]}"
  done
  ls -l artifacts/packages
}

# The value of counter $3 in the first row of Google Benchmark console log $1 whose name starts with $2.
bench_counter() {
  [ -f "$1" ] || return 0
  grep -E "^$2" "$1" | head -1 | grep -oE "(^| )$3=[^ ]+" | head -1 | sed -E 's/.*=//'
}

# For a GPU machine that has nvcc, cmake and ninja but no dotnet.
cmd_gpu_check() {
  local dir="$ROOT/build/native-gpu"
  step "GPU check: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"
  INFINITE_CUDA=ON configure_native "$dir"
  cmake --build "$dir" -j "$JOBS"
  ctest --test-dir "$dir" --output-on-failure -j 1 2>&1 | tee "$dir/ctest.log" || true
  count_ctest "$dir/ctest.log"
  if [ -x "$dir/bin/infinite_bench" ]; then
    "$dir/bin/infinite_bench" --benchmark_min_time=0.1s "$@" 2>&1 | tee "$dir/bench.log" || true
  fi
  echo
  echo "| what | result |"
  echo "|---|---|"
  echo "| device | $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1) |"
  echo "| nvcc | $(nvcc --version | sed -nE 's/.*release ([0-9.]+).*/\1/p') |"
  echo "| native tests | $PASSED passed, $FAILED failed, $SKIPPED skipped |"
  local ms floor pct
  ms="$(bench_counter "$dir/bench.log" 'model/decode/cuda/llama3-8b/' 'ms/token')"
  floor="$(bench_counter "$dir/bench.log" 'model/decode/cuda/llama3-8b/' 'floor_ms')"
  pct="$(bench_counter "$dir/bench.log" 'model/decode/cuda/llama3-8b/' 'pct_of_floor')"
  if [ -n "$ms" ]; then
    echo "| CUDA model decode (Llama-3-8B shape, bf16, ctx 32K, batch 1) | $ms ms/token; bandwidth floor $floor ms ($pct%) |"
  else
    echo "| CUDA model decode (Llama-3-8B shape, bf16, ctx 32K, batch 1) | no result (see $dir/bench.log) |"
  fi
  [ "$FAILED" -eq 0 ]
}

cmd_clean() { rm -rf build artifacts; }

case "${1:-}" in
  deps) cmd_deps ;;
  build) cmd_deps; cmd_build ;;
  test) cmd_test ;;
  run) shift; [ "${1:-}" = "--" ] && shift; cmd_run "$@" ;;
  bench) shift; cmd_bench "$@" ;;
  pack) cmd_pack ;;
  bindings) cmd_bindings ;;
  gpu-check) shift; cmd_gpu_check "$@" ;;
  clean) cmd_clean ;;
  *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; [ -z "${1:-}" ] || exit 2 ;;
esac
