# cmake -DCLI=<cortex-connectors> -DOUT=<file> -P write_manifest_schema.cmake
# Writes the manifest's JSON Schema as the built command-line tool prints it
# (`cortex-connectors schema`), so the installed file cannot differ from the validator's rules.
execute_process(COMMAND "${CLI}" schema OUTPUT_FILE "${OUT}.tmp" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${CLI} schema failed (${rc})")
endif()
file(RENAME "${OUT}.tmp" "${OUT}")
