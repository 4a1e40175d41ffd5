# Manual pages and the image format documentation.
dist_man_MANS += doc/crtool.8 doc/crlaunch.1 doc/crctl.1
EXTRA_DIST += doc/images.md doc/epochs.md
