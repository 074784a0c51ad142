/* OpenTelemetry semantic-convention rules (see semconv.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "span/semconv.h"
#include "span/span.h"

static const char *const http_methods[] = { "GET",     "HEAD",    "POST",  "PUT",  "DELETE",
					    "CONNECT", "OPTIONS", "TRACE", "PATCH" };

bool semconv__http_method_known(const char *m, size_t n)
{
	for (size_t i = 0; i < sizeof(http_methods) / sizeof(http_methods[0]); i++)
		if (strlen(http_methods[i]) == n && memcmp(m, http_methods[i], n) == 0)
			return true;
	return false;
}

const char *semconv__http_method_label(const char *m)
{
	return semconv__http_method_known(m, strlen(m)) ? m : "_OTHER";
}

void semconv__http_error_type(char *out, size_t n, bool server, uint16_t status)
{
	if (status >= 500 || (!server && status >= 400))
		snprintf(out, n, "%u", status);
	else if (n)
		out[0] = '\0';
}

enum semconv_status semconv__span_status(const char *error_type)
{
	return error_type && error_type[0] ? SEMCONV_STATUS_ERROR : SEMCONV_STATUS_UNSET;
}

const char *semconv__transport_error_type(int32_t err)
{
	switch (err) {
	case 0:
		return SPAN_ERR_CLOSED;
	case ETIMEDOUT:
		return SPAN_ERR_TIMEOUT;
	case EHOSTUNREACH:
	case ENETUNREACH:
		return SPAN_ERR_UNREACHABLE;
	default:	/* ECONNRESET, EPIPE, ECONNABORTED */
		return SPAN_ERR_RESET;
	}
}
