# Reads CORTEX_CONNECTORS_VERSION from include/cortex_connectors/version.h, the one place it lives.
function(cortex_connectors_extract_version)
  file(READ "${CMAKE_CURRENT_SOURCE_DIR}/include/cortex_connectors/version.h" header)
  foreach(part MAJOR MINOR PATCH)
    string(REGEX MATCH "#define CORTEX_CONNECTORS_VERSION_${part} ([0-9]+)" match "${header}")
    set(ver_${part} "${CMAKE_MATCH_1}")
    if(ver_${part} STREQUAL "")
      message(FATAL_ERROR "Could not read CORTEX_CONNECTORS_VERSION_${part} from version.h")
    endif()
  endforeach()
  set(CORTEX_CONNECTORS_VERSION "${ver_MAJOR}.${ver_MINOR}.${ver_PATCH}" PARENT_SCOPE)
endfunction()

# Warnings, stay PRIVATE so consumers never inherit them.
function(cortex_connectors_enable_warnings target)
  if(NOT CORTEX_CONNECTORS_WARNINGS)
    return()
  endif()
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
    -Wsign-conversion -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual
    -Wnull-dereference -Wformat=2 -Wimplicit-fallthrough)
  if(CORTEX_CONNECTORS_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# Sanitizers go on every target, the library included.
function(cortex_connectors_enable_sanitizers target)
  if(CORTEX_CONNECTORS_SANITIZE STREQUAL "")
    return()
  endif()
  target_compile_options(${target} PRIVATE -fsanitize=${CORTEX_CONNECTORS_SANITIZE}
                         -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(${target} PUBLIC -fsanitize=${CORTEX_CONNECTORS_SANITIZE})
endfunction()

function(cortex_connectors_setup_target target)
  cortex_connectors_enable_warnings(${target})
  cortex_connectors_enable_sanitizers(${target})
endfunction()
