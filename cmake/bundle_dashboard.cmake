# cmake -DSOURCE_DIR=apps/chatgpt-dashboard -DOUTPUT_DIR=<dir> -P bundle_dashboard.cmake
#
# Writes the dashboard bundle: every .js and .css file as <stem>.<16 hex of its SHA-256>.<ext>
# (served as immutable), every other file under its own name (served no-cache + ETag), with
# references to the renamed files rewritten in the .html files. The output depends on the
# sources' bytes only, so two builds of the same sources give identical bundles. JS and CSS files
# must not refer to each other by name (they are hashed as they are).
cmake_minimum_required(VERSION 3.25)
foreach(var SOURCE_DIR OUTPUT_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "bundle_dashboard.cmake: ${var} is required")
  endif()
endforeach()

file(REMOVE_RECURSE "${OUTPUT_DIR}")
file(MAKE_DIRECTORY "${OUTPUT_DIR}")
file(GLOB sources RELATIVE "${SOURCE_DIR}" "${SOURCE_DIR}/*")
list(SORT sources)

set(renames "")
set(pages "")
foreach(name IN LISTS sources)
  if(IS_DIRECTORY "${SOURCE_DIR}/${name}")
    message(FATAL_ERROR "bundle_dashboard.cmake: subdirectories are not supported (${name})")
  endif()
  if(name MATCHES "^(.+)\\.(js|css)$")
    file(SHA256 "${SOURCE_DIR}/${name}" digest)
    string(SUBSTRING "${digest}" 0 16 short)
    set(hashed "${CMAKE_MATCH_1}.${short}.${CMAKE_MATCH_2}")
    configure_file("${SOURCE_DIR}/${name}" "${OUTPUT_DIR}/${hashed}" COPYONLY)
    list(APPEND renames "${name}=${hashed}")
  elseif(name MATCHES "\\.html$")
    list(APPEND pages "${name}")
  else()
    configure_file("${SOURCE_DIR}/${name}" "${OUTPUT_DIR}/${name}" COPYONLY)
  endif()
endforeach()

foreach(page IN LISTS pages)
  file(READ "${SOURCE_DIR}/${page}" html)
  foreach(rename IN LISTS renames)
    string(REPLACE "=" ";" pair "${rename}")
    list(GET pair 0 from)
    list(GET pair 1 to)
    # Only quoted attribute values: src="x.js", href="x.css".
    string(REPLACE "\"${from}\"" "\"${to}\"" html "${html}")
  endforeach()
  file(WRITE "${OUTPUT_DIR}/${page}" "${html}")
endforeach()
list(JOIN renames ", " summary)
message(STATUS "dashboard bundle: ${summary}")
