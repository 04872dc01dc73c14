# Test executables: one per module (common_tests, operator_tests, agent_tests, csi_shim_tests).
# Sub-folders add their *_test.cc files with meshstor_test_sources(<exe> <files...>) and the
# libraries those tests need with meshstor_test_libraries(<exe> <libs...>); the executables are
# created once, at the end of the top-level CMakeLists.txt, by meshstor_finalize_tests().
# Every Catch2 test case becomes one ctest test labelled "unit" (lab tests are labelled "lab").
enable_testing()
include(Catch)

add_library(meshstor_catch_main OBJECT ${PROJECT_SOURCE_DIR}/common/testing/catch_main.cc)
target_link_libraries(meshstor_catch_main PUBLIC Catch2::Catch2)

set_property(GLOBAL PROPERTY MESHSTOR_TEST_EXECUTABLES "")

function(meshstor_test_sources exe)
  set_property(GLOBAL APPEND PROPERTY MESHSTOR_TEST_EXECUTABLES ${exe})
  foreach(src IN LISTS ARGN)
    get_filename_component(abs ${src} ABSOLUTE)
    set_property(GLOBAL APPEND PROPERTY MESHSTOR_TEST_SOURCES_${exe} ${abs})
  endforeach()
endfunction()

function(meshstor_test_libraries exe)
  set_property(GLOBAL APPEND PROPERTY MESHSTOR_TEST_LIBS_${exe} ${ARGN})
endfunction()

# Sets the ctest label of an executable's tests (default "unit").
function(meshstor_test_label exe label)
  set_property(GLOBAL PROPERTY MESHSTOR_TEST_LABEL_${exe} ${label})
endfunction()

function(meshstor_finalize_tests)
  get_property(exes GLOBAL PROPERTY MESHSTOR_TEST_EXECUTABLES)
  list(REMOVE_DUPLICATES exes)
  foreach(exe IN LISTS exes)
    get_property(srcs GLOBAL PROPERTY MESHSTOR_TEST_SOURCES_${exe})
    get_property(libs GLOBAL PROPERTY MESHSTOR_TEST_LIBS_${exe})
    add_executable(${exe} ${srcs} $<TARGET_OBJECTS:meshstor_catch_main>)
    target_link_libraries(${exe} PRIVATE ${libs} Catch2::Catch2)
    # Tests read fixtures (crds/, examples) relative to the source tree.
    target_compile_definitions(${exe} PRIVATE MESHSTOR_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
    get_property(label GLOBAL PROPERTY MESHSTOR_TEST_LABEL_${exe})
    if(NOT label)
      set(label unit)
    endif()
    catch_discover_tests(${exe} TEST_SPEC "~[.]" PROPERTIES LABELS ${label} TIMEOUT 300)
  endforeach()
endfunction()
