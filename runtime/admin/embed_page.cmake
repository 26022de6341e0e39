# Writes the text of IN into OUT, a C++ file defining `const char NAME[]`
# in namespace postconn, so a page kept as its own file is compiled into
# the binary. Run at build time: cmake -DIN=... -DOUT=... -DNAME=... -P
file(READ ${IN} text)
set(delimiter "page_text")
string(FIND "${text}" ")${delimiter}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} contains )${delimiter}\", which ends the raw string")
endif()
file(WRITE ${OUT}.new
  "// Generated from ${IN} by embed_page.cmake; edit that file instead.\n"
  "namespace postconn {\n"
  "extern const char ${NAME}[];\n"
  "const char ${NAME}[] = R\"${delimiter}(${text})${delimiter}\";\n"
  "} // namespace postconn\n")
file(RENAME ${OUT}.new ${OUT})
