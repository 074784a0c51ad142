/* Unit tests for user/span/semconv.c: the semantic-convention rules every
 * signal shares (HTTP method whitelist, error.type, span status). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "span/semconv.h"
#include "span/span.h"

static void test_methods(void)
{
	static const char *const known[] = { "GET",     "HEAD",    "POST",  "PUT",  "DELETE",
					     "CONNECT", "OPTIONS", "TRACE", "PATCH" };

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		CHECK(semconv__http_method_known(known[i], strlen(known[i])));
		CHECK_EQ_STR(semconv__http_method_label(known[i]), known[i]);
	}
	/* case matters (RFC 9110: methods are case-sensitive) */
	CHECK_EQ_STR(semconv__http_method_label("get"), "_OTHER");
	CHECK_EQ_STR(semconv__http_method_label("PROPFIND"), "_OTHER");
	CHECK_EQ_STR(semconv__http_method_label(""), "_OTHER");
	CHECK_EQ_STR(semconv__http_method_label("GETX"), "_OTHER");
	/* length-delimited: a prefix of a known method is not it */
	CHECK(!semconv__http_method_known("GET", 2));
	CHECK(semconv__http_method_known("GETX", 3));
	CHECK(!semconv__http_method_known("PATCHES", 7));
}

static void test_http_error_type(void)
{
	char e[8];

	semconv__http_error_type(e, sizeof(e), true, 500);
	CHECK_EQ_STR(e, "500");
	semconv__http_error_type(e, sizeof(e), true, 503);
	CHECK_EQ_STR(e, "503");
	semconv__http_error_type(e, sizeof(e), true, 404);	/* the client's fault */
	CHECK_EQ_STR(e, "");
	semconv__http_error_type(e, sizeof(e), true, 499);
	CHECK_EQ_STR(e, "");
	semconv__http_error_type(e, sizeof(e), false, 404);
	CHECK_EQ_STR(e, "404");
	semconv__http_error_type(e, sizeof(e), false, 400);
	CHECK_EQ_STR(e, "400");
	semconv__http_error_type(e, sizeof(e), false, 399);
	CHECK_EQ_STR(e, "");
	semconv__http_error_type(e, sizeof(e), false, 200);
	CHECK_EQ_STR(e, "");
	semconv__http_error_type(e, sizeof(e), false, 101);
	CHECK_EQ_STR(e, "");
	semconv__http_error_type(e, sizeof(e), false, 0);	/* no response: the transport says */
	CHECK_EQ_STR(e, "");
}

static void test_transport_error_type(void)
{
	CHECK_EQ_STR(semconv__transport_error_type(0), "connection_closed");
	CHECK_EQ_STR(semconv__transport_error_type(ECONNRESET), "connection_reset");
	CHECK_EQ_STR(semconv__transport_error_type(EPIPE), "connection_reset");
	CHECK_EQ_STR(semconv__transport_error_type(ECONNABORTED), "connection_reset");
	CHECK_EQ_STR(semconv__transport_error_type(ETIMEDOUT), "timeout");
	CHECK_EQ_STR(semconv__transport_error_type(EHOSTUNREACH), "host_unreachable");
	CHECK_EQ_STR(semconv__transport_error_type(ENETUNREACH), "host_unreachable");
	CHECK_EQ_STR(SPAN_ERR_CANCELLED, "request_cancelled");
}

/* OTel RPC conventions: which gRPC statuses are errors, on which side. */
static void test_grpc_error_type(void)
{
	static const char *const server_err[17] = {
		[2] = "UNKNOWN", [4] = "DEADLINE_EXCEEDED", [12] = "UNIMPLEMENTED",
		[13] = "INTERNAL", [14] = "UNAVAILABLE", [15] = "DATA_LOSS",
	};
	char e[32];

	for (int code = 0; code <= 16; code++) {
		semconv__grpc_error_type(e, sizeof(e), true, code);
		CHECK_EQ_STR(e, server_err[code] ? server_err[code] : "");
		semconv__grpc_error_type(e, sizeof(e), false, code);
		CHECK_EQ_STR(e, code ? semconv__grpc_status_name(code) : "");
	}
	CHECK_EQ_STR(semconv__grpc_status_name(5), "NOT_FOUND");
	CHECK_EQ_STR(semconv__grpc_status_name(16), "UNAUTHENTICATED");
	CHECK(semconv__grpc_status_name(17) == NULL);
	CHECK(semconv__grpc_status_name(-1) == NULL);
	semconv__grpc_error_type(e, sizeof(e), false, 42);	/* outside the list: the number */
	CHECK_EQ_STR(e, "42");
	semconv__grpc_error_type(e, sizeof(e), true, 42);
	CHECK_EQ_STR(e, "");
	semconv__grpc_error_type(e, sizeof(e), true, -1);	/* no status at all */
	CHECK_EQ_STR(e, "_OTHER");
	semconv__grpc_error_type(e, sizeof(e), false, -1);
	CHECK_EQ_STR(e, "_OTHER");
}

static void test_span_status(void)
{
	CHECK_EQ_INT(semconv__span_status(""), SEMCONV_STATUS_UNSET);
	CHECK_EQ_INT(semconv__span_status(NULL), SEMCONV_STATUS_UNSET);
	CHECK_EQ_INT(semconv__span_status("500"), SEMCONV_STATUS_ERROR);
	CHECK_EQ_INT(semconv__span_status("connection_reset"), SEMCONV_STATUS_ERROR);
	CHECK_EQ_INT(semconv__span_status("42P01"), SEMCONV_STATUS_ERROR);
	CHECK_EQ_INT(SEMCONV_STATUS_ERROR, 2);	/* OTLP Status.code */
}

int main(void)
{
	test_methods();
	test_http_error_type();
	test_transport_error_type();
	test_grpc_error_type();
	test_span_status();
	return check_summary("test_semconv");
}
