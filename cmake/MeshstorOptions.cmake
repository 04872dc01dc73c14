# Compiler flags applied to every target of the project (not to third-party code).
add_compile_options(-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align
                    -Woverloaded-virtual -Wimplicit-fallthrough
                    # Designated initializers leave fields at their defaults on purpose.
                    -Wno-missing-field-initializers)
if(MESHSTOR_WERROR)
  add_compile_options(-Werror)
endif()

if(MESHSTOR_SANITIZE)
  message(STATUS "meshstor: building with ASan + UBSan")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  # GCC 12 reports false maybe-uninitialized warnings inside libstdc++ (std::regex, std::function)
  # once sanitizer instrumentation changes inlining; keep them visible but not fatal.
  add_compile_options(-Wno-error=maybe-uninitialized)
  add_link_options(-fsanitize=address,undefined)
endif()

# Includes are rooted at the repository: #include "common/status/status.h".
include_directories(${PROJECT_SOURCE_DIR})
