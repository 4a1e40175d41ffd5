# Manual pages and the image format documentation.
dist_man_MANS += doc/crtool.8
EXTRA_DIST += doc/images.md
