# Windows mirror of build.sh (a thin one: PowerShell is not available on the Linux machines this
# project is developed and tested on, so this script is written to match build.sh but is not run in CI).
#   .\build.ps1 deps | build | test | run [-- ARGS] | bench | pack | bindings | clean
# Needs: Visual Studio 2022 (C++ workload) or LLVM, CMake >= 3.25, Ninja, the .NET 10 SDK,
# and optionally the CUDA toolkit. `deps` checks for them and prints what is missing.
param(
    [Parameter(Position = 0)][string]$Command = "help",
    [Parameter(Position = 1, ValueFromRemainingArguments = $true)][string[]]$Rest = @()
)
$ErrorActionPreference = "Stop"
Set-Location $PSScriptRoot

$Config = if ($env:INFINITE_CONFIG) { $env:INFINITE_CONFIG } else { "Release" }
$Jobs = if ($env:INFINITE_JOBS) { $env:INFINITE_JOBS } else { $env:NUMBER_OF_PROCESSORS }
$NativeBuild = Join-Path $PSScriptRoot "build/native"
$Generator = "bindings/Infinite.Bindings.Generator"
$Rsp = "bindings/infinite.rsp"

function Step($text) { Write-Host "`n==> $text" }
function Invoke-Checked { & $args[0] @($args | Select-Object -Skip 1); if ($LASTEXITCODE -ne 0) { throw "$($args -join ' ') failed ($LASTEXITCODE)" } }

function Deps {
    Step "deps"
    $missing = @("cmake", "ninja", "dotnet") | Where-Object { -not (Get-Command $_ -ErrorAction SilentlyContinue) }
    if ($missing) { throw "Missing: $($missing -join ', '). Install them (winget install Kitware.CMake Ninja-build.Ninja Microsoft.DotNet.SDK.10)." }
    if (-not (Get-Command nvcc -ErrorAction SilentlyContinue)) { Write-Host "nvcc not found: the CUDA plug-in will not be built." }
}

function Build {
    Step "native build ($Config)"
    $cuda = if ($env:INFINITE_CUDA) { $env:INFINITE_CUDA } else { "AUTO" }
    Invoke-Checked cmake -G Ninja -S native -B $NativeBuild "-DCMAKE_BUILD_TYPE=$Config" "-DINFINITE_CUDA=$cuda"
    Invoke-Checked cmake --build $NativeBuild -j $Jobs
    Step "managed build"
    Invoke-Checked dotnet build Interop.sln -c $Config -nologo -v quiet
}

function Test {
    Deps; Build
    Step "bindings drift check"
    Invoke-Checked dotnet run --project $Generator -c $Config --no-build -- "@$Rsp" --check
    Step "native tests"
    Invoke-Checked ctest --test-dir $NativeBuild --output-on-failure
    Step "managed tests"
    Invoke-Checked dotnet test Interop.sln -c $Config --no-build -nologo
}

switch ($Command) {
    "deps" { Deps }
    "build" { Deps; Build }
    "test" { Test }
    "run" {
        Deps; Build
        $cliArgs = @($Rest | Where-Object { $_ -ne "--" })
        if ($cliArgs.Count -eq 0) { $cliArgs = @("devices") }
        Invoke-Checked dotnet run --project src/Infinite.Cli -c $Config --no-build -- @cliArgs
    }
    "bench" { Build; Invoke-Checked (Join-Path $NativeBuild "bin/infinite_bench") @Rest }
    "pack" { Build; Invoke-Checked dotnet pack bindings/Infinite.Native -c $Config --no-build -o artifacts/packages }
    "bindings" { Invoke-Checked dotnet run --project $Generator -c $Config -- "@$Rsp" }
    "clean" { Remove-Item -Recurse -Force build, artifacts -ErrorAction SilentlyContinue }
    default { Get-Content $PSCommandPath | Select-Object -Skip 2 -First 4 }
}
