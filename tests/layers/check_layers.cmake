# NAME
#   check_layers -- fails when a file includes a header its layer may not use.
#
# SYNOPSIS
#   cmake -DROOT=<source dir> -DRULES=<rules file> -P check_layers.cmake
#
# DESCRIPTION
#   RULES has one line per layer, "folder:kind:used,used" (written by the
#   top-level CMakeLists.txt from its postconn_layer() calls). Every .cpp and
#   .hpp directly in a layer's folder may include headers of its own folder
#   and of the folders it uses. A layer of kind "pure" also includes no CAF
#   header and, of the vocabulary, only its words (no actor interfaces, no
#   registry). Each violation is printed as file:line; any fails the run.
cmake_minimum_required(VERSION 3.16)
if(NOT ROOT OR NOT RULES)
  message(FATAL_ERROR "usage: cmake -DROOT=DIR -DRULES=FILE -P check_layers.cmake")
endif()

file(STRINGS ${RULES} rules)
set(violations 0)
foreach(rule ${rules})
  if(rule STREQUAL "")
    continue()
  endif()
  string(REPLACE ":" ";" fields "${rule}")
  list(GET fields 0 folder)
  list(GET fields 1 kind)
  list(LENGTH fields field_count)
  set(used "")
  if(field_count GREATER 2)
    list(GET fields 2 used)
    string(REPLACE "," ";" used "${used}")
  endif()
  file(GLOB files ${ROOT}/${folder}/*.cpp ${ROOT}/${folder}/*.hpp)
  foreach(file ${files})
    file(RELATIVE_PATH name ${ROOT} ${file})
    file(STRINGS ${file} lines REGEX "^[ \t]*#[ \t]*include")
    set(line_number 0)
    # file(STRINGS) drops the other lines, so look the line number up.
    file(STRINGS ${file} all_lines)
    foreach(line ${lines})
      list(FIND all_lines "${line}" index)
      math(EXPR line_number "${index} + 1")
      set(problem "")
      if(line MATCHES "include[ \t]*\"([^\"]+)\"")
        set(header ${CMAKE_MATCH_1})
        get_filename_component(owner ${header} DIRECTORY)
        list(FIND used "${owner}" used_index)
        if(NOT owner STREQUAL folder AND used_index EQUAL -1)
          string(REPLACE ";" ", " allowed "${folder};${used}")
          set(problem "includes ${header}: ${folder} may include only ${allowed}")
        elseif(kind STREQUAL "pure" AND header MATCHES "^messages/(actors|registry)\\.hpp$")
          set(problem "includes ${header}: ${folder} is pure (no actor interfaces)")
        endif()
      elseif(kind STREQUAL "pure" AND line MATCHES "include[ \t]*<caf/")
        set(problem "includes a CAF header: ${folder} is pure (no actors, no scheduling)")
      endif()
      if(problem)
        message("${name}:${line_number}: ${problem}")
        math(EXPR violations "${violations} + 1")
      endif()
    endforeach()
  endforeach()
endforeach()
if(violations GREATER 0)
  message(FATAL_ERROR "layer check: ${violations} forbidden include(s)")
endif()
