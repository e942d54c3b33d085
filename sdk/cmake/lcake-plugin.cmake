# lcake_add_plugin(NAME SOURCES src... [LIBS lib...] [INSTALL_DIR dir] [OUTPUT_DIR dir] [NO_INSTALL])
# Builds lcake-NAME.so, the file name lcake's plugin host looks for.
# INSTALL_DIR: where `cmake --install` puts it (default: the plugin dir of the
# lcake it was built against). OUTPUT_DIR: where the build puts it. NO_INSTALL:
# build only (test plugins).
# Only the entry point (lcake_plugin_entry_v*) is exported: a version script
# keeps every other symbol, the plugin's own and its static libraries', local,
# so two plugins never bind to each other's copies of a library.
function(lcake_add_plugin name)
  cmake_parse_arguments(P "NO_INSTALL" "INSTALL_DIR;OUTPUT_DIR" "SOURCES;LIBS" ${ARGN})
  set(tgt lcake-${name})
  add_library(${tgt} MODULE ${P_SOURCES})
  target_link_libraries(${tgt} PRIVATE lcake::sdk OpenSSL::Crypto Threads::Threads ${P_LIBS})
  set_target_properties(${tgt} PROPERTIES PREFIX "" OUTPUT_NAME lcake-${name} SUFFIX ".so"
    CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  target_link_options(${tgt} PRIVATE -Wl,--no-undefined)
  set(exports ${CMAKE_CURRENT_BINARY_DIR}/${tgt}.exports)
  file(WRITE ${exports} "{ global: lcake_plugin_entry_v*; local: *; };\n")
  target_link_options(${tgt} PRIVATE -Wl,--version-script=${exports})
  if(P_OUTPUT_DIR)
    set_target_properties(${tgt} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${P_OUTPUT_DIR})
  elseif(DEFINED LCAKE_PLUGIN_OUTPUT_DIR)
    set_target_properties(${tgt} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${LCAKE_PLUGIN_OUTPUT_DIR})
  endif()
  if(P_NO_INSTALL)
    return()
  elseif(P_INSTALL_DIR)
    install(TARGETS ${tgt} LIBRARY DESTINATION ${P_INSTALL_DIR})
  elseif(DEFINED LCAKE_PLUGIN_INSTALL_DIR)
    install(TARGETS ${tgt} LIBRARY DESTINATION ${LCAKE_PLUGIN_INSTALL_DIR})
  elseif(DEFINED LCAKE_PLUGIN_DIR)
    install(TARGETS ${tgt} LIBRARY DESTINATION ${LCAKE_PLUGIN_DIR})
  endif()
endfunction()
