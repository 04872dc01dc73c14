# Every dependency comes from Debian 12 packages; tools/setup-deps.sh installs them.
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(fmt REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(ZLIB REQUIRED)
find_package(Catch2 2 REQUIRED)
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_package(Boost 1.74 REQUIRED)  # header-only: Asio

pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
pkg_check_modules(LIBNL REQUIRED IMPORTED_TARGET libnl-3.0 libnl-genl-3.0 libnl-route-3.0)
pkg_check_modules(BLKID REQUIRED IMPORTED_TARGET blkid)
pkg_check_modules(FDISK REQUIRED IMPORTED_TARGET fdisk)
pkg_check_modules(MOUNT REQUIRED IMPORTED_TARGET mount)

# RapidJSON is header-only; Debian ships a CMake config without an imported target.
find_path(RAPIDJSON_INCLUDE_DIR rapidjson/document.h REQUIRED)
add_library(meshstor_rapidjson INTERFACE)
target_include_directories(meshstor_rapidjson SYSTEM INTERFACE ${RAPIDJSON_INCLUDE_DIR})
# std::string support in RapidJSON values.
target_compile_definitions(meshstor_rapidjson INTERFACE RAPIDJSON_HAS_STDSTRING=1)
