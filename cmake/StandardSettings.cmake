# Two interface targets every vmemfs target links PRIVATE: settings and warnings.
add_library(vmemfs_settings INTERFACE)
target_compile_definitions(vmemfs_settings INTERFACE $<$<CONFIG:Debug>:_GLIBCXX_ASSERTIONS>)
option(VMEMFS_SANITIZE "Build with ASan and UBSan" OFF)
if(VMEMFS_SANITIZE)
  target_compile_options(vmemfs_settings INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer)
  target_link_options(vmemfs_settings INTERFACE -fsanitize=address,undefined)
endif()

add_library(vmemfs_warnings INTERFACE)
target_compile_options(vmemfs_warnings INTERFACE -Wall -Wextra -Wno-unused-parameter
  $<$<BOOL:${VMEMFS_DEV_MODE}>:-Werror>)
