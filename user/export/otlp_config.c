/* OTLP exporter configuration from the OTEL_* environment, and the retry
 * policy, as pure functions so the unit tests can drive them. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "export/otlp.h"

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* %XX-decodes [s, s+len) with blanks trimmed into a new string; NULL with
 * errno EINVAL/ENOMEM. Control characters would let a value smuggle extra
 * header lines, so they are refused after decoding too. */
static char *decode(const char *s, size_t len)
{
	char *out, *p;

	while (len && isspace((unsigned char)*s))
		s++, len--;
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	out = p = malloc(len + 1);
	if (!out) {
		errno = ENOMEM;
		return NULL;
	}
	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int h, l;

			if (i + 2 >= len || (h = hexval(s[i + 1])) < 0 || (l = hexval(s[i + 2])) < 0)
				goto bad;
			c = h << 4 | l;
			i += 2;
		}
		if (c < 0x20 || c == 0x7f)
			goto bad;
		*p++ = (char)c;
	}
	*p = 0;
	return out;
bad:
	free(out);
	errno = EINVAL;
	return NULL;
}

int otlp__parse_kv_list(const char *s, struct otlp_kv *out, size_t max, size_t *n)
{
	while (s && *s) {
		const char *end = strchr(s, ','), *eq;
		size_t len = end ? (size_t)(end - s) : strlen(s);
		char *k, *v;

		eq = memchr(s, '=', len);
		/* tolerate empty entries ("a=1,,b=2", a trailing comma) */
		if (!eq) {
			for (size_t i = 0; i < len; i++)
				if (!isspace((unsigned char)s[i]))
					return -EINVAL;
			s += len + (end ? 1 : 0);
			continue;
		}
		if (*n >= max)
			return -EINVAL;
		k = decode(s, (size_t)(eq - s));
		if (!k)
			return -errno;
		v = decode(eq + 1, len - (size_t)(eq - s) - 1);
		if (!v || !*k) {
			int e = v ? -EINVAL : -errno;

			free(k);
			free(v);
			return e;
		}
		out[*n].key = k;
		out[*n].value = v;
		(*n)++;
		s += len + (end ? 1 : 0);
	}
	return 0;
}

int otlp__check_url(const char *url, char *why, size_t whylen)
{
	const char *p, *end, *host, *hend, *at;
	char addr[INET6_ADDRSTRLEN + 1];
	unsigned long port = 0;

	if (strncmp(url, "http://", 7) == 0)
		p = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		p = url + 8;
	else {
		snprintf(why, whylen, "must start with http:// or https://");
		return -EINVAL;
	}
	for (const char *q = url; *q; q++)
		if ((unsigned char)*q <= 0x20 || *q == 0x7f) {
			snprintf(why, whylen, "blank or control character at byte %zu", (size_t)(q - url));
			return -EINVAL;
		}
	end = p + strcspn(p, "/?#");		/* the authority is [p, end) */
	at = memchr(p, '@', (size_t)(end - p));
	while (at) {				/* userinfo: up to the last '@' */
		p = at + 1;
		at = memchr(p, '@', (size_t)(end - p));
	}
	host = p;
	if (*host == '[') {
		hend = memchr(host, ']', (size_t)(end - host));
		if (!hend) {
			snprintf(why, whylen, "'[' of an IPv6 host without its ']'");
			return -EINVAL;
		}
		if ((size_t)(hend - host - 1) >= sizeof(addr)) {
			snprintf(why, whylen, "invalid IPv6 address");
			return -EINVAL;
		}
		memcpy(addr, host + 1, (size_t)(hend - host - 1));
		addr[hend - host - 1] = 0;
		if (!inet_pton(AF_INET6, addr, &(struct in6_addr){ 0 })) {
			snprintf(why, whylen, "invalid IPv6 address '%s'", addr);
			return -EINVAL;
		}
		p = hend + 1;
		if (p != end && *p != ':') {
			snprintf(why, whylen, "unexpected '%c' after the IPv6 address", *p);
			return -EINVAL;
		}
	} else {
		hend = memchr(host, ':', (size_t)(end - host));
		p = hend ? hend : end;
		if (p == host) {
			snprintf(why, whylen, "no host");
			return -EINVAL;
		}
		for (const char *q = host; q < p; q++)
			if (!isalnum((unsigned char)*q) && *q != '-' && *q != '.' && *q != '_') {
				snprintf(why, whylen, "'%c' in the host name", *q);
				return -EINVAL;
			}
	}
	if (p != end) {				/* ":port" */
		const char *d = ++p;

		for (; p < end && isdigit((unsigned char)*p) && p - d < 6; p++)
			port = port * 10 + (unsigned long)(*p - '0');
		if (p == d || p != end || port < 1 || port > 65535) {
			snprintf(why, whylen, "port '%.*s' not in 1..65535", (int)(end - d), d);
			return -EINVAL;
		}
	}
	return 0;
}

static void free_kvs(struct otlp_kv *kv, size_t *n)
{
	for (size_t i = 0; i < *n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	*n = 0;
}

void otlp__config_free(struct otlp_config *c)
{
	for (int i = 0; i < OTLP_NSIGNALS; i++)
		free_kvs(c->sig[i].headers, &c->sig[i].nheaders);
	free_kvs(c->resource, &c->nresource);
}

static const char *nonempty(otlp_getenv_fn env, const char *name)
{
	const char *v = env(name);

	return v && *v ? v : NULL;
}

static int env_u32(otlp_getenv_fn env, const char *name, uint32_t min, uint32_t max, uint32_t *out,
		   char *err, size_t errlen)
{
	const char *v = nonempty(env, name);
	unsigned long x;
	char *end;

	if (!v)
		return 0;
	errno = 0;
	x = strtoul(v, &end, 10);
	if (errno || *end || x < min || x > max) {
		snprintf(err, errlen, "%s: '%s' is not a number in %u..%u", name, v, min, max);
		return -EINVAL;
	}
	*out = (uint32_t)x;
	return 0;
}

/* The first of two variables that is set (signal-specific wins). */
static const char *pick(otlp_getenv_fn env, const char *specific, const char *general,
			const char **which)
{
	const char *v = nonempty(env, specific);

	*which = specific;
	if (v)
		return v;
	*which = general;
	return nonempty(env, general);
}

int otlp__config_load(struct otlp_config *c, otlp_getenv_fn env, const char *endpoint,
		      char *err, size_t errlen)
{
	static const char *const sname[] = { "TRACES", "METRICS" };
	static const char *const path[] = { "v1/traces", "v1/metrics" };
	const char *base = endpoint && *endpoint ? endpoint : nonempty(env, "OTEL_EXPORTER_OTLP_ENDPOINT");
	char name[64], why[96];
	int rc;

	memset(c, 0, sizeof(*c));
	c->batch_size = 512;
	c->schedule_delay_ms = 5000;
	c->queue_size = 2048;
	c->metric_interval_ms = 60000;
	c->max_retry_ms = 60000;
	snprintf(err, errlen, "ok");
	for (int i = 0; i < OTLP_NSIGNALS; i++) {
		struct otlp_signal_config *s = &c->sig[i];
		const char *v, *which;

		snprintf(name, sizeof(name), "OTEL_EXPORTER_OTLP_%s_ENDPOINT", sname[i]);
		if ((v = nonempty(env, name))) {
			/* signal-specific: used as given, per the specification */
			if ((size_t)snprintf(s->url, sizeof(s->url), "%s", v) >= sizeof(s->url))
				goto toolong;
		} else if (base) {
			size_t bl = strlen(base);
			const char *sep = bl && base[bl - 1] == '/' ? "" : "/";

			if ((size_t)snprintf(s->url, sizeof(s->url), "%s%s%s", base, sep, path[i]) >=
			    sizeof(s->url))
				goto toolong;
		}
		if (s->url[0] && otlp__check_url(s->url, why, sizeof(why))) {
			snprintf(err, errlen, "%s: OTLP endpoint '%s': %s", v ? name
				 : endpoint && *endpoint ? "--otlp-endpoint" : "OTEL_EXPORTER_OTLP_ENDPOINT",
				 s->url, why);
			return -EINVAL;
		}
		snprintf(name, sizeof(name), "OTEL_EXPORTER_OTLP_%s_HEADERS", sname[i]);
		v = pick(env, name, "OTEL_EXPORTER_OTLP_HEADERS", &which);
		if ((rc = otlp__parse_kv_list(v, s->headers, OTLP_MAX_KV, &s->nheaders))) {
			snprintf(err, errlen, "%s: malformed (want key=value,... with %%XX escapes, at most %d)",
				 which, OTLP_MAX_KV);
			return rc;
		}
		snprintf(name, sizeof(name), "OTEL_EXPORTER_OTLP_%s_COMPRESSION", sname[i]);
		v = pick(env, name, "OTEL_EXPORTER_OTLP_COMPRESSION", &which);
		if (v && strcmp(v, "gzip") == 0)
			s->gzip = true;
		else if (v && strcmp(v, "none") != 0) {
			snprintf(err, errlen, "%s: '%s' (want gzip or none)", which, v);
			return -EINVAL;
		}
		s->timeout_ms = 10000;
		snprintf(name, sizeof(name), "OTEL_EXPORTER_OTLP_%s_TIMEOUT", sname[i]);
		if ((rc = env_u32(env, "OTEL_EXPORTER_OTLP_TIMEOUT", 1, 600000, &s->timeout_ms, err, errlen)) ||
		    (rc = env_u32(env, name, 1, 600000, &s->timeout_ms, err, errlen)))
			return rc;
	}
	if ((rc = env_u32(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 1, 65536, &c->batch_size, err, errlen)) ||
	    (rc = env_u32(env, "OTEL_BSP_SCHEDULE_DELAY", 1, 3600000, &c->schedule_delay_ms, err, errlen)) ||
	    (rc = env_u32(env, "OTEL_BSP_MAX_QUEUE_SIZE", 1, 1u << 20, &c->queue_size, err, errlen)) ||
	    (rc = env_u32(env, "OTEL_METRIC_EXPORT_INTERVAL", 100, 86400000, &c->metric_interval_ms, err,
			  errlen)) ||
	    (rc = env_u32(env, "SONDE_OTLP_RETRY_MAX_ELAPSED", 0, 3600000, &c->max_retry_ms, err, errlen)))
		return rc;
	/* the specification: a batch larger than the queue is the queue */
	if (c->batch_size > c->queue_size)
		c->batch_size = c->queue_size;
	if (sampler__init(&c->sampler, nonempty(env, "OTEL_TRACES_SAMPLER"),
			  nonempty(env, "OTEL_TRACES_SAMPLER_ARG"))) {
		snprintf(err, errlen, "OTEL_TRACES_SAMPLER/OTEL_TRACES_SAMPLER_ARG: unknown sampler or ratio "
			 "not in [0, 1]");
		return -EINVAL;
	}
	if ((rc = otlp__parse_kv_list(nonempty(env, "OTEL_RESOURCE_ATTRIBUTES"), c->resource, OTLP_MAX_KV,
				      &c->nresource))) {
		snprintf(err, errlen, "OTEL_RESOURCE_ATTRIBUTES: malformed (want key=value,... with %%XX "
			 "escapes, at most %d)", OTLP_MAX_KV);
		return rc;
	}
	if (gethostname(c->host_name, sizeof(c->host_name) - 1))
		snprintf(c->host_name, sizeof(c->host_name), "unknown");
	return 0;
toolong:
	snprintf(err, errlen, "OTLP endpoint longer than %d bytes", OTLP_URL_MAX - 1);
	return -EINVAL;
}

/* ---- retry policy ---- */

enum otlp_outcome otlp__classify(bool transport_ok, long http_status)
{
	if (!transport_ok)
		return OTLP_RETRY;
	if (http_status >= 200 && http_status < 300)
		return OTLP_SUCCESS;
	/* the OTLP/HTTP specification's retryable set */
	if (http_status == 429 || http_status == 502 || http_status == 503 || http_status == 504)
		return OTLP_RETRY;
	return OTLP_FAIL;
}

uint64_t otlp__backoff_ms(unsigned int retry, long retry_after_s, double rnd)
{
	uint64_t d = 500;

	if (retry_after_s >= 0)
		return (uint64_t)retry_after_s * 1000;
	for (unsigned int i = 1; i < retry && d < 16000; i++)
		d *= 2;
	if (d > 16000)
		d = 16000;
	if (!(rnd >= 0 && rnd < 1))
		rnd = 0;
	return d / 2 + (uint64_t)((double)(d / 2) * rnd);
}

long otlp__parse_retry_after(const char *v, size_t len)
{
	long s = 0;
	size_t i = 0, digits;

	while (i < len && (v[i] == ' ' || v[i] == '\t'))
		i++;
	if (i == len)
		return -1;
	for (digits = i; i < len && v[i] >= '0' && v[i] <= '9'; i++) {
		s = s * 10 + (v[i] - '0');
		if (s > 86400)
			s = 86400;
	}
	if (i == digits)
		return -1;
	while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n'))
		i++;
	return i == len ? s : -1;
}
