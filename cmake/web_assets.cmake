# The analyst console (web/: HTML, CSS, JavaScript, no build step), embedded in csq_lib as byte
# arrays with their SHA-256 (the ETag) by cmake/embed_web.cmake; the generated .cpp is rebuilt
# when a file of web/ changes, and a file added to web/ re-runs the configuration.
file(GLOB CSQ_WEB_FILES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/web/*)
set(CSQ_WEB_CPP ${CMAKE_BINARY_DIR}/generated/web/web_assets.cpp)
add_custom_command(
  OUTPUT ${CSQ_WEB_CPP}
  COMMAND ${CMAKE_COMMAND} -DWEB_DIR=${CMAKE_SOURCE_DIR}/web -DOUT=${CSQ_WEB_CPP} -P ${CMAKE_SOURCE_DIR}/cmake/embed_web.cmake
  DEPENDS ${CSQ_WEB_FILES} ${CMAKE_SOURCE_DIR}/cmake/embed_web.cmake
  COMMENT "Embedding the console (web/)"
  VERBATIM)
target_sources(csq_lib PRIVATE ${CSQ_WEB_CPP})
