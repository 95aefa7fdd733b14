# INFINITE_SANITIZE=ON: AddressSanitizer + UndefinedBehaviorSanitizer on the core and the native tests.
# Every UB report is fatal (-fno-sanitize-recover=all) so ctest fails instead of printing and passing.
include_guard(GLOBAL)

set(INFINITE_SANITIZER_LIST "none")
if(INFINITE_SANITIZE)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    message(FATAL_ERROR "INFINITE_SANITIZE=ON needs GCC or Clang (got ${CMAKE_CXX_COMPILER_ID})")
  endif()
  set(INFINITE_SANITIZER_LIST "address,undefined")
endif()

function(infinite_enable_sanitizers target)
  if(INFINITE_SANITIZE)
    set(_flags -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:C,CXX>:${_flags}>)
    target_link_options(${target} PRIVATE ${_flags})
    # GCC's -Wmaybe-uninitialized gives false positives under -fsanitize=address (its manual says so;
    # e.g. inside libstdc++'s <regex>). The unsanitized build keeps the warning.
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:C,CXX>:-Wno-maybe-uninitialized>)
    endif()
  endif()
endfunction()
