#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"

int cr_loglevel = LOG_WARN;
int cr_log_fd = STDERR_FILENO;

void cr_log(int level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	if (level > cr_loglevel)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	/* One write per line so lines from several processes do not interleave. */
	if (write(cr_log_fd, buf, n) < 0)
		return;
}
