# nudge_add_test(NAME KIND unit|sim|socket|pcap SOURCES ... [LIBS ...] [TIMEOUT s])
# One GoogleTest executable per call, registered with ctest under a label per kind,
# so CI and developers can pick tiers: `ctest -L unit`.
include(GoogleTest)
find_package(GTest REQUIRED)
function(nudge_add_test name)
  cmake_parse_arguments(T "" "KIND;TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main nudge_warnings)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  gtest_discover_tests(${name} PROPERTIES LABELS ${T_KIND} TIMEOUT ${T_TIMEOUT}
                       DISCOVERY_TIMEOUT 60 WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
endfunction()

# nudge_add_fuzzer(NAME SOURCES ... LIBS ...): a libFuzzer target (fuzz preset only).
function(nudge_add_fuzzer name)
  cmake_parse_arguments(F "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${F_SOURCES})
  target_link_libraries(${name} PRIVATE ${F_LIBS})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
endfunction()
