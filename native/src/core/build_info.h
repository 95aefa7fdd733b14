// What inf_version and inf_build_info report: fixed when the library is compiled.
#pragma once

namespace inf {

const char* version_string() noexcept;
// Several "key: value" lines: version, compiler, build type, cuda, mpi, cpu, sanitizers.
const char* build_info_string() noexcept;

}  // namespace inf
