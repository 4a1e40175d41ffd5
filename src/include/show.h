/*
 * `crtool show`: decode an image directory for people (text) or programs
 * (one JSON document). Works from the protobuf descriptors alone, so a new
 * image kind or field shows up without changes here.
 */
#ifndef CR_SHOW_H
#define CR_SHOW_H

#include <stdbool.h>

/*
 * Print every *.img file of DIR, sorted by name, on stdout. Raw page files
 * (pages-*.img) are summarised by size. JSON: {"file.img": [record, ...],
 * "pages-N.img": {"bytes": n, "pages": n}, ...}. A file that cannot be fully
 * decoded is reported (on stderr) and the others are still shown. Returns 0,
 * or 1 if any file failed (the exit status).
 */
int show_cmd(const char *dir, bool json);

#endif
