/* Logging: every line carries a module prefix and names the object acted on. */
#ifndef CR_LOG_H
#define CR_LOG_H

#include <errno.h>

enum { LOG_ERR = 1, LOG_WARN = 2, LOG_INFO = 3, LOG_DEBUG = 4 };

#ifndef LOG_PREFIX
#define LOG_PREFIX ""
#endif

extern int cr_loglevel;
extern int cr_log_fd;

void cr_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pr_err(fmt, ...)   cr_log(LOG_ERR, "Error: " LOG_PREFIX fmt, ##__VA_ARGS__)
#define pr_warn(fmt, ...)  cr_log(LOG_WARN, "Warning: " LOG_PREFIX fmt, ##__VA_ARGS__)
#define pr_info(fmt, ...)  cr_log(LOG_INFO, LOG_PREFIX fmt, ##__VA_ARGS__)
#define pr_debug(fmt, ...) cr_log(LOG_DEBUG, LOG_PREFIX fmt, ##__VA_ARGS__)
/* Log with strerror(errno) appended; errno is preserved. */
#define pr_perror(fmt, ...)                                                        \
	({                                                                         \
		int __e = errno;                                                   \
		cr_log(LOG_ERR, "Error: " LOG_PREFIX fmt ": %s\n", ##__VA_ARGS__,  \
		       strerror(__e));                                             \
		errno = __e;                                                       \
	})

/* Log an error for a -errno value r and return r. */
#define log_errno(r, fmt, ...)                                                     \
	({                                                                         \
		int __r = (r);                                                     \
		cr_log(LOG_ERR, "Error: " LOG_PREFIX fmt ": %s\n", ##__VA_ARGS__,  \
		       strerror(__r < 0 ? -__r : __r));                            \
		__r < 0 ? __r : -__r;                                              \
	})

#include <string.h>

#endif
