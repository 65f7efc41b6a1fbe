// Debian's libhiredis-dev (0.14.1): the synchronous API only. Headers live in /usr/include, so no
// pkg-config is needed (its -D_FILE_OFFSET_BITS=64 is a flag SwiftPM refuses anyway).
#include <hiredis/hiredis.h>
