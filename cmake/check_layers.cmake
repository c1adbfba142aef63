# Fails when a file includes a header of a layer it may not use.
#
#   core/       nothing of ours
#   operators/  core/
#   io/         core/, operators/ (line framing, watermarks, row encoders)
#   dataflow/   core/, operators/, io/
#   tools/      anything (executables' mains)
#
# Run by the build (target check_layers, part of ALL) and by a test on a tree
# with a violation planted (tests/layers). Usage:
#   cmake -DSOURCE_DIR=<root> [-DSTAMP=<file>] -P cmake/check_layers.cmake
if(NOT SOURCE_DIR)
  message(FATAL_ERROR "check_layers: SOURCE_DIR not set")
endif()

set(allowed_core "core")
set(allowed_operators "core;operators")
set(allowed_io "core;operators;io")
set(allowed_dataflow "core;operators;io;dataflow")
set(layers core operators io dataflow tools tests bench perf)

set(violations "")
foreach(layer core operators io dataflow)
  file(GLOB_RECURSE files "${SOURCE_DIR}/${layer}/*.h" "${SOURCE_DIR}/${layer}/*.cc")
  foreach(f ${files})
    file(STRINGS "${f}" includes REGEX "^[ \t]*#[ \t]*include[ \t]+\"[a-z_]+/")
    foreach(line ${includes})
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]+\"([a-z_]+)/.*" "\\1" target "${line}")
      list(FIND layers "${target}" known)
      if(known EQUAL -1)
        continue()  # not one of ours (a library header with a folder)
      endif()
      list(FIND allowed_${layer} "${target}" ok)
      if(ok EQUAL -1)
        file(RELATIVE_PATH rel "${SOURCE_DIR}" "${f}")
        string(STRIP "${line}" line)
        list(APPEND violations "${rel}: ${layer}/ may not include ${target}/ (${line})")
      endif()
    endforeach()
  endforeach()
endforeach()

if(violations)
  list(JOIN violations "\n  " text)
  message(FATAL_ERROR "layering violations (see ARCHITECTURE.md, \"Layers\"):\n  ${text}")
endif()
if(STAMP)
  file(WRITE "${STAMP}" "ok\n")
endif()
