# Strict warnings for project code (never for third-party headers, which come in as SYSTEM).
include_guard(GLOBAL)

function(infinite_set_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE
      $<$<COMPILE_LANGUAGE:C,CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wcast-qual
        -Wformat=2 -Wundef -Wnull-dereference -Wimplicit-fallthrough>
      $<$<COMPILE_LANGUAGE:CXX>:-Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual>)
    if(INFINITE_WERROR)
      target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:C,CXX>:-Werror>)
    endif()
  endif()
  # nvcc: its own diagnostics (cross-execution-space calls, deprecated declarations, ...) are errors,
  # and the host compiler sees -Wall -Wextra on the host side of .cu files. Host warnings are not made
  # errors there: nvcc's generated stubs trip -Wextra in some host compiler / nvcc pairings.
  get_property(_languages GLOBAL PROPERTY ENABLED_LANGUAGES)
  if(CUDA IN_LIST _languages)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)
    if(INFINITE_WERROR)
      target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--Werror=all-warnings>)
    endif()
  endif()
endfunction()
