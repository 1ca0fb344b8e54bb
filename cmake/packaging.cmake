# Debian packages with CPack (scripts/package.sh, docs/deploying.md). `cpack -G DEB` in a
# configured and built tree writes, for the components of the install rules:
#   cortex-connectors-server_<version>_<arch>.deb  "server": the server, the command-line tool,
#       the dashboard bundle and example manifest, the systemd unit, the commented configuration
#       file (a conffile), the documents
#   libcortexconnectors-dev_<version>_<arch>.deb   "dev": headers, static libraries, the CMake
#       package and the pkg-config file
# The packages install under /usr. The server's run-time dependencies are what dpkg-shlibdeps
# finds in its ELF files. The package installs files only: no maintainer script, so nothing
# starts until an operator enables the unit.
set(server_docdir ${CMAKE_INSTALL_DATAROOTDIR}/doc/cortex-connectors-server)
install(FILES LICENSE DESTINATION ${server_docdir} RENAME copyright COMPONENT server)
install(FILES README.md DESTINATION ${server_docdir} COMPONENT server)
file(GLOB server_docs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${server_docs} DESTINATION ${server_docdir}/docs COMPONENT server)

set(CORTEX_CONNECTORS_PACKAGE_CONTACT "brAInwav cortex_connectors maintainers <maintainers@brainwav.invalid>"
    CACHE STRING "The Maintainer field of the Debian packages")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME cortex-connectors)
set(CPACK_PACKAGE_VENDOR brAInwav)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${CORTEX_CONNECTORS_PACKAGE_CONTACT}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL server dev)
# <name>_<version>_<arch>.deb, as Debian names them.
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)

set(CPACK_DEBIAN_SERVER_PACKAGE_NAME cortex-connectors-server)
set(CPACK_DEBIAN_SERVER_PACKAGE_SECTION net)
set(CPACK_DEBIAN_SERVER_DESCRIPTION
    "signed service map of a connectors manifest over HTTP and SSE
cortex-connectors-server serves the signed service map of a brAInwav Cortex-OS connectors
manifest (HTTP, server-sent events, Prometheus metrics, the operator dashboard) and reloads it
when the file changes. The package holds the server, the cortex-connectors command-line tool
and a hardened systemd unit (Type=notify, DynamicUser=, keys as credentials) that starts only
once a manifest and keys are in place.")
set(CPACK_DEBIAN_SERVER_PACKAGE_SHLIBDEPS ON)
# The server loads libsystemd.so.0 at run time (server/CMakeLists.txt): not seen by shlibdeps.
if(CORTEX_CONNECTORS_HAVE_SYSTEMD)
  set(CPACK_DEBIAN_SERVER_PACKAGE_DEPENDS "libsystemd0")
endif()
# The configuration file is the operator's: an upgrade keeps their edits.
file(WRITE ${PROJECT_BINARY_DIR}/packaging/server/conffiles
     "/etc/cortex-connectors/cortex-connectors.env\n")
set(CPACK_DEBIAN_SERVER_PACKAGE_CONTROL_EXTRA ${PROJECT_BINARY_DIR}/packaging/server/conffiles)

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libcortexconnectors-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_DESCRIPTION
    "connectors runtime of the brAInwav Cortex-OS platform (development files)
libcortexconnectors parses and validates connectors manifests, builds and signs the service
map (RFC 8785 canonical JSON, HMAC-SHA256, Ed25519), frames SSE updates and renders metrics.
This package holds the headers, the static libraries (core, client, SQLite history), the CMake
package (find_package(cortex_connectors)) and the pkg-config file.")
# Static libraries hold nothing dpkg-shlibdeps reads: a consumer links their dependencies, so
# the -dev packages of what cmake/cortex_connectorsConfig.cmake.in finds are the dependencies.
set(CPACK_DEBIAN_DEV_PACKAGE_SHLIBDEPS OFF)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
    "libfmt-dev, libsimdjson-dev, prometheus-cpp-dev, zlib1g-dev, libssl-dev, libsodium-dev, libbrotli-dev, libcpp-httplib-dev (>= 0.11.4), libcpp-httplib-dev (<< 0.11.5), libsqlite3-dev, pkg-config")

include(CPack)
