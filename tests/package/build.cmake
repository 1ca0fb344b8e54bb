# ctest -P script, the fixture of the [package] tests (tests/test_package.cpp): builds the
# Debian packages of the configured and built tree BUILD_DIR into OUT_DIR with cpack, as
# scripts/package.sh does in a Release tree of its own (this one is the test build's: no second
# build for CI).
file(REMOVE_RECURSE "${OUT_DIR}")
# gzip, not the packages' xz: this tree's static libraries carry debug information (~70 MB), which
# xz takes a minute to compress and gzip seconds. The contents are the same.
execute_process(COMMAND "${CPACK}" --config "${BUILD_DIR}/CPackConfig.cmake" -G DEB -B "${OUT_DIR}"
                        -D CPACK_DEBIAN_COMPRESSION_TYPE=gzip
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cpack -G DEB failed (${rc})")
endif()
file(GLOB debs "${OUT_DIR}/*.deb")
message(STATUS "packages: ${debs}")
