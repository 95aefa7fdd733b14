// main() of infinite_bench: Google Benchmark's, plus the library's build in the context block, and
// "--benchmark_min_time=<seconds>s" accepted on Google Benchmark releases before 1.8 (which want a
// plain number), so scripts can use the new spelling everywhere.
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <vector>

#include "infinite/infinite.h"

namespace {

std::vector<std::string> normalise_arguments(int argc, char** argv) {
    std::vector<std::string> arguments(argv, argv + argc);
#if INFINITE_BENCHMARK_VERSION_MAJOR < 1 || (INFINITE_BENCHMARK_VERSION_MAJOR == 1 && INFINITE_BENCHMARK_VERSION_MINOR < 8)
    const std::string flag = "--benchmark_min_time=";
    for (auto& argument : arguments) {
        if (argument.rfind(flag, 0) == 0 && argument.size() > flag.size() && argument.back() == 's') {
            argument.pop_back();
        }
    }
#endif
    return arguments;
}

std::string build_line(const char* key) {
    const std::string info = inf_build_info();
    const std::string prefix = std::string("\n") + key + ": ";
    const auto begin = info.find(prefix);
    if (begin == std::string::npos) {
        return "?";
    }
    const auto end = info.find('\n', begin + prefix.size());
    return info.substr(begin + prefix.size(), end == std::string::npos ? std::string::npos : end - begin - prefix.size());
}

}  // namespace

void register_buffer_benchmarks();
void register_cuda_attention_benchmarks();
void register_cuda_model_benchmarks();

int main(int argc, char** argv) {
    std::vector<std::string> arguments = normalise_arguments(argc, argv);
    std::vector<char*> pointers;
    for (auto& argument : arguments) {
        pointers.push_back(argument.data());
    }
    int count = static_cast<int>(pointers.size());
    benchmark::Initialize(&count, pointers.data());
    if (benchmark::ReportUnrecognizedArguments(count, pointers.data())) {
        return 1;
    }
    benchmark::AddCustomContext("infinite", inf_version());
    benchmark::AddCustomContext("infinite_build", build_line("build type"));
    benchmark::AddCustomContext("infinite_cuda", build_line("cuda"));
    register_buffer_benchmarks();
    register_cuda_attention_benchmarks();
    register_cuda_model_benchmarks();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
