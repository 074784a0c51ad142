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
	/* per span: GET without a strlen and a loop over the list */
	if (m[0] == 'G' && m[1] == 'E' && m[2] == 'T' && m[3] == '\0')
		return m;
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

const char *semconv__grpc_status_name(int code)
{
	static const char *const names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
		"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
		"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
		"UNAUTHENTICATED",
	};

	return code >= 0 && code < (int)(sizeof(names) / sizeof(names[0])) ? names[code] : NULL;
}

void semconv__grpc_error_type(char *out, size_t n, bool server, int code)
{
	const char *name = semconv__grpc_status_name(code);
	bool error;

	if (n == 0)
		return;
	out[0] = '\0';
	if (code < 0) {
		snprintf(out, n, "_OTHER");
		return;
	}
	if (server)	/* the codes OTel's RPC conventions count as server errors */
		error = code == 2 || code == 4 || code == 12 || code == 13 || code == 14 || code == 15;
	else
		error = code != 0;
	if (!error)
		return;
	if (name)
		snprintf(out, n, "%s", name);
	else
		snprintf(out, n, "%d", code);
}
