/*
 * Kernel feature probes. Every feature is detected by exercising it (never
 * by kernel version), once per process; `crtool check` prints the results
 * and test sidecars name features by the names used here. The environment
 * variable CR_FEATURES_DISABLE=name,name... makes features look missing, so
 * that tests can force the fallback paths.
 */
#ifndef CR_KERNDAT_H
#define CR_KERNDAT_H

#include <stdbool.h>
#include <stddef.h>

struct cr_feature {
	const char *name;
	const char *what_breaks;	/* what fails without it, for `crtool check` */
	bool required;			/* dump/restore cannot work without it */
	int present;			/* 1 yes, 0 no, -errno if the probe itself failed */
};

/* Run every probe not run yet and cache the results; returns 0. */
int kerndat_probe_all(void);
/* The table of all features, probed (see kerndat_probe_all); *n gets its length. */
const struct cr_feature *kerndat_features(size_t *n);
/* Whether feature NAME is present; probes it on first use. Unknown names are false. */
bool kerndat_has(const char *name);
/*
 * `crtool check [--json]`: print the feature table (or a JSON object
 * {"name": bool, ..., "usable": bool}) on stdout. Returns 0 if every required
 * feature is present, else 1 (the exit status).
 */
int kerndat_check_cmd(bool json);

#endif
