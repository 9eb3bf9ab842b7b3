# cmake -DWEB_DIR=... -DOUT=... -P embed_web.cmake: writes a .cpp defining
# csq::server::web_assets() (src/server/web_assets.h) over every file of WEB_DIR, by name.
file(GLOB names RELATIVE ${WEB_DIR} ${WEB_DIR}/*)
list(SORT names)
set(arrays "")
set(table "")
set(index 0)
foreach(name ${names})
  if(IS_DIRECTORY ${WEB_DIR}/${name})
    message(FATAL_ERROR "web/${name}: the console's assets are flat files; no folders")
  endif()
  file(READ ${WEB_DIR}/${name} hex HEX)
  string(LENGTH "${hex}" hex_length)
  math(EXPR size "${hex_length} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  file(SHA256 ${WEB_DIR}/${name} digest)
  string(APPEND arrays "const unsigned char k_asset_${index}[] = {${bytes}0};\n")
  string(APPEND table "    {\"${name}\", reinterpret_cast<const char*>(k_asset_${index}), ${size}, \"${digest}\"},\n")
  math(EXPR index "${index} + 1")
endforeach()
file(WRITE ${OUT}.tmp "// Generated from web/ by cmake/embed_web.cmake: do not edit.
#include \"server/web_assets.h\"

namespace csq::server {
namespace {
${arrays}
const WebAsset kAssets[] = {
${table}};
}  // namespace

std::span<const WebAsset> web_assets() { return kAssets; }

}  // namespace csq::server
")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUT}.tmp)
