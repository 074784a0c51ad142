/* OpenTelemetry semantic-convention rules for spans, each written once:
 * known HTTP methods, error.type of an HTTP span, span status. Metrics
 * labels (signals/), OTLP (export/) and the span builder all use these. */
#ifndef SONDE_SEMCONV_H
#define SONDE_SEMCONV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* OTLP Status.code values (opentelemetry/proto/trace/v1/trace.proto). */
enum semconv_status { SEMCONV_STATUS_UNSET = 0, SEMCONV_STATUS_OK = 1, SEMCONV_STATUS_ERROR = 2 };

/* One of the methods of RFC 9110 and RFC 5789 (GET … PATCH), exactly as
 * spelled there; the n bytes at m need no NUL. */
bool semconv__http_method_known(const char *m, size_t n);
/* http.request.method of a metric: the method when known, else "_OTHER"
 * (bounded cardinality). */
const char *semconv__http_method_label(const char *m);
/* error.type of an HTTP span from its status: server spans 5xx, client
 * spans 4xx and 5xx, as the decimal code; "" otherwise (status 0 = no
 * response is the transport's business: see SPAN_ERR_*). */
void semconv__http_error_type(char *out, size_t n, bool server, uint16_t status);
/* gRPC status code name ("OK", "NOT_FOUND", …), NULL outside 0..16. */
const char *semconv__grpc_status_name(int code);
/* error.type of an RPC span from its grpc-status (-1: none came): the
 * status name when OTel counts it as an error (server: UNKNOWN,
 * DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS;
 * client: every code but OK); "" otherwise. A call with no status at all
 * is an error on both sides ("_OTHER"), unless the transport said why. */
void semconv__grpc_error_type(char *out, size_t n, bool server, int code);

/* error.type of a client request the connection failed under, from the
 * errno the kernel saw (0: the peer closed, EOF): SPAN_ERR_CLOSED,
 * _TIMEOUT, _UNREACHABLE, or _RESET for ECONNRESET, EPIPE, ECONNABORTED
 * and anything else. */
const char *semconv__transport_error_type(int32_t err);
/* Span status: ERROR exactly when the span has an error.type; else UNSET
 * (instrumentations leave OK to the application). */
enum semconv_status semconv__span_status(const char *error_type);

#endif
