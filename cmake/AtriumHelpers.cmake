# One helper per kind of target, so that adding a library, a test or a benchmark is one
# line in the folder's CMakeLists.txt.

# The one warning list, applied to every Atrium target (never to system headers).
set(ATRIUM_WARNINGS -Wall -Wextra -Wconversion -Wsign-conversion -Wshadow -Wnon-virtual-dtor
    -Wold-style-cast -Woverloaded-virtual -Wimplicit-fallthrough -Werror
    # (-Wnull-dereference is left out: at -O2 GCC 12 reports false positives inside
    # libstdc++ stream iterators.)
    # GCC 12 warns about designated initializers that leave defaulted members out, which is
    # how Atrium writes specs ({.id = 1, .amount = x}).
    -Wno-missing-field-initializers)

function(atrium_apply_defaults target)
  target_compile_options(${target} PRIVATE ${ATRIUM_WARNINGS})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  if(ATRIUM_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer
                                             -fno-sanitize-recover=undefined)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
  if(ATRIUM_FUZZ)
    # Coverage for libFuzzer in every library; only fuzz targets link its main.
    # Clang's warnings differ from GCC's, which gates the dev build: report, do not fail.
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link -Wno-error)
  endif()
  if(ATRIUM_TSAN)
    target_compile_options(${target} PRIVATE -fsanitize=thread -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=thread)
  endif()
endfunction()

# atrium_library(NAME SOURCES a.cc b.cc DEPS other libs)
function(atrium_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  atrium_apply_defaults(${name})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  if(ATRIUM_SANITIZE)
    target_link_options(${name} INTERFACE -fsanitize=address,undefined)
  endif()
  if(ATRIUM_TSAN)
    target_link_options(${name} INTERFACE -fsanitize=thread)
  endif()
endfunction()

# atrium_executable(NAME SOURCES main.cc DEPS libs)
function(atrium_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  atrium_apply_defaults(${name})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
endfunction()

# atrium_test(NAME SOURCES x_test.cc DEPS libs [LABELS slow] [TIMEOUT s])
function(atrium_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  atrium_apply_defaults(${name})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  add_test(NAME ${name} COMMAND ${name})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "${ARG_LABELS}")
endfunction()

# atrium_benchmark(NAME SOURCES x_benchmark.cc DEPS libs)
function(atrium_benchmark name)
  if(NOT ATRIUM_BENCHMARKS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  atrium_apply_defaults(${name})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} benchmark::benchmark benchmark::benchmark_main)
endfunction()

# atrium_fuzzer(NAME SOURCES x_fuzzer.cc DEPS libs): a libFuzzer target (tests/fuzz/), built
# only with ATRIUM_FUZZ (the `fuzz` preset, clang). Its seed corpus is tests/fuzz/corpus/NAME.
function(atrium_fuzzer name)
  if(NOT ATRIUM_FUZZ)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  atrium_apply_defaults(${name})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
endfunction()
