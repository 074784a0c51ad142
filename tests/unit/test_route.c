/* Unit tests for the route normaliser: the documented examples exactly,
 * the {id} rules, cut-offs, and a fixed-seed garbage loop for safety. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "span/route.h"

static char rbuf[512];

static const char *norm(const char *target)
{
	size_t n = route__normalize(target, strlen(target), rbuf, sizeof(rbuf));

	CHECK_EQ_INT(n, strlen(rbuf));
	return rbuf;
}

static const char *norm_sz(const char *target, size_t outsz)
{
	size_t n;

	memset(rbuf, 'X', sizeof(rbuf));
	n = route__normalize(target, strlen(target), rbuf, outsz);
	CHECK(n < outsz);
	CHECK_EQ_INT(n, strlen(rbuf));
	CHECK(rbuf[outsz] == 'X');	/* nothing written past outsz */
	return rbuf;
}

static void test_examples(void)
{
	CHECK_EQ_STR(norm("/users/123"), "/users/{id}");
	CHECK_EQ_STR(norm("/users/123/orders/456?x=1"), "/users/{id}/orders/{id}");
	CHECK_EQ_STR(norm("/api/v1/items"), "/api/v1/items");
	CHECK_EQ_STR(norm("/o/550e8400-e29b-41d4-a716-446655440000"), "/o/{id}");
	CHECK_EQ_STR(norm("/blob/9f86d081884c7d65"), "/blob/{id}");
	CHECK_EQ_STR(norm("/static/app.js"), "/static/app.js");
	CHECK_EQ_STR(norm("/"), "/");
	CHECK_EQ_STR(norm(""), "/");
	CHECK_EQ_STR(norm("http://example.com:8080/a/7?q"), "/a/{id}");
	CHECK_EQ_STR(norm("/a//b"), "/a/b");
	CHECK_EQ_STR(norm("*"), "*");
}

static void test_forms(void)
{
	CHECK_EQ_STR(norm("https://example.com/a/b"), "/a/b");
	CHECK_EQ_STR(norm("HTTP://EXAMPLE.COM:1/x"), "/x");
	CHECK_EQ_STR(norm("http://example.com"), "/");
	CHECK_EQ_STR(norm("http://example.com?q=/a/1"), "/");
	CHECK_EQ_STR(norm("http://example.com#/a"), "/");
	CHECK_EQ_STR(norm("https://u@h:443//a//5//"), "/a/{id}/");
	CHECK_EQ_STR(norm("/a?b/c"), "/a");
	CHECK_EQ_STR(norm("/a#frag/1"), "/a");
	CHECK_EQ_STR(norm("/a?"), "/a");
	CHECK_EQ_STR(norm("?x=1"), "/");
	CHECK_EQ_STR(norm("#"), "/");
	CHECK_EQ_STR(norm("*?x"), "*");
	CHECK_EQ_STR(norm("**"), "/**");
	CHECK_EQ_STR(norm("a/b"), "/a/b");
	CHECK_EQ_STR(norm("example.com:443"), "/example.com:443");
	CHECK_EQ_STR(norm("//"), "/");
	CHECK_EQ_STR(norm("///a"), "/a");
	CHECK_EQ_STR(norm("/a/"), "/a/");
	CHECK_EQ_STR(norm("/a//"), "/a/");
	CHECK_EQ_STR(norm("/users/123/"), "/users/{id}/");
	CHECK_EQ_STR(norm("/a/../b/./c"), "/a/../b/./c");
	CHECK_EQ_STR(norm("/x:y/1"), "/x:y/{id}");

	/* Length is honoured: no NUL needed, and an embedded NUL ends it. */
	CHECK_EQ_INT(route__normalize("/users/123/orders", 10, rbuf, sizeof(rbuf)), 11);
	CHECK_EQ_STR(rbuf, "/users/{id}");
	CHECK_EQ_INT(route__normalize("/a\0/123", 7, rbuf, sizeof(rbuf)), 2);
	CHECK_EQ_STR(rbuf, "/a");
	CHECK_EQ_INT(route__normalize(NULL, 0, rbuf, sizeof(rbuf)), 1);
	CHECK_EQ_STR(rbuf, "/");
	CHECK_EQ_INT(route__normalize(NULL, 5, rbuf, sizeof(rbuf)), 1);
	CHECK_EQ_STR(rbuf, "/");
}

static void test_id_rules(void)
{
	/* a) digits */
	CHECK_EQ_STR(norm("/0"), "/{id}");
	CHECK_EQ_STR(norm("/00000000000000000000000000000000000001"), "/{id}");
	CHECK_EQ_STR(norm("/-1"), "/-1");
	CHECK_EQ_STR(norm("/1.5"), "/1.5");
	/* b) UUID, either case, exact shape only */
	CHECK_EQ_STR(norm("/550E8400-E29B-41D4-A716-446655440000"), "/{id}");
	CHECK_EQ_STR(norm("/abcdefab-abcd-abcd-abcd-abcdefabcdef"), "/{id}");
	CHECK_EQ_STR(norm("/550e8400-e29b"), "/550e8400-e29b");
	CHECK_EQ_STR(norm("/550e8400-e29b-41d4-a716-44665544000.txt"), "/550e8400-e29b-41d4-a716-44665544000.txt");
	/* Near-UUIDs still fall to the token rule d). */
	CHECK_EQ_STR(norm("/550e8400-e29b-41d4-a716-44665544000g"), "/{id}");
	/* c) hex >= 8 with a digit */
	CHECK_EQ_STR(norm("/abcdef12"), "/{id}");
	CHECK_EQ_STR(norm("/ABCDEF12"), "/{id}");
	CHECK_EQ_STR(norm("/abcde12"), "/abcde12");		/* 7 chars */
	CHECK_EQ_STR(norm("/deadbeef"), "/deadbeef");		/* no digit */
	CHECK_EQ_STR(norm("/facade"), "/facade");
	CHECK_EQ_STR(norm("/5f1d7a3b9c2e4d6f8a0b1c2d"), "/{id}");	/* ObjectId */
	/* d) opaque tokens >= 16 mixing letters and digits */
	CHECK_EQ_STR(norm("/01ARZ3NDEKTSV4RRFFQ69G5FAV"), "/{id}");	/* ULID */
	CHECK_EQ_STR(norm("/dGhpcyBpcyBhIHRva2Vu0w=="), "/{id}");
	CHECK_EQ_STR(norm("/aB3_-xY9zzQ+kLm2"), "/{id}");		/* 16 */
	CHECK_EQ_STR(norm("/aB3_-xY9zzQ+kLm"), "/aB3_-xY9zzQ+kLm");	/* 15 */
	CHECK_EQ_STR(norm("/hello%20world%20again"), "/{id}");
	CHECK_EQ_STR(norm("/abcdefghijklmnopqrstuvwxyz"), "/abcdefghijklmnopqrstuvwxyz");
	CHECK_EQ_STR(norm("/getuserbyidandname"), "/getuserbyidandname");
	CHECK_EQ_STR(norm("/jquery-3.7.1.min.js.map"), "/jquery-3.7.1.min.js.map");
	CHECK_EQ_STR(norm("/report~2024~final~v2"), "/report~2024~final~v2");
	/* e) random-looking alphanumerics of 8..15 bytes */
	CHECK_EQ_STR(norm("/users/x7Gq2LpZ9"), "/users/{id}");	/* e1: 3 digit runs */
	CHECK_EQ_STR(norm("/v/dQw4w9WgXcQ"), "/v/{id}");		/* e1: 2 digit runs */
	CHECK_EQ_STR(norm("/s/aZ3kQ9pL"), "/s/{id}");		/* e1, 8 bytes */
	CHECK_EQ_STR(norm("/s/aZkQ9pLm"), "/s/{id}");		/* e1: 3 lower-upper steps */
	CHECK_EQ_STR(norm("/s/Xk9ZvBqw"), "/s/{id}");		/* e1: no vowel */
	CHECK_EQ_STR(norm("/s/Xk9Zvbqw"), "/s/Xk9Zvbqw");	/* "Zvbq" reads as a word */
	CHECK_EQ_STR(norm("/s/k3j9x2m8"), "/s/{id}");		/* e2 */
	CHECK_EQ_STR(norm("/s/K3J9X2M8Q"), "/s/{id}");		/* e2, upper case */
	CHECK_EQ_STR(norm("/s/aZ3kQ9p"), "/s/aZ3kQ9p");		/* 7 bytes */
	CHECK_EQ_STR(norm("/s/aZ3k-Q9pL"), "/s/aZ3k-Q9pL");	/* not alphanumeric */
	/* ...but words with a number in them stay */
	CHECK_EQ_STR(norm("/p/iPhone15Pro"), "/p/iPhone15Pro");
	CHECK_EQ_STR(norm("/OAuth2Callback"), "/OAuth2Callback");
	CHECK_EQ_STR(norm("/codec/H264Decoder"), "/codec/H264Decoder");
	CHECK_EQ_STR(norm("/SHA256Sum"), "/SHA256Sum");
	CHECK_EQ_STR(norm("/IPv6Address"), "/IPv6Address");
	CHECK_EQ_STR(norm("/Win10Pro"), "/Win10Pro");
	CHECK_EQ_STR(norm("/getUser2"), "/getUser2");
	CHECK_EQ_STR(norm("/api/getUserById2"), "/api/getUserById2");
	CHECK_EQ_STR(norm("/apis/apps/v1beta1"), "/apis/apps/v1beta1");
	CHECK_EQ_STR(norm("/apis/batch/v2alpha1"), "/apis/batch/v2alpha1");
	CHECK_EQ_STR(norm("/chips/stm32f429"), "/chips/stm32f429");
	CHECK_EQ_STR(norm("/oauth2callback"), "/oauth2callback");
	CHECK_EQ_STR(norm("/UTF8String"), "/UTF8String");
	CHECK_EQ_STR(norm("/product123"), "/product123");
	/* ...and so do words without digits, random or not (the per-service
	 * route budget bounds those) */
	CHECK_EQ_STR(norm("/api/orders"), "/api/orders");
	CHECK_EQ_STR(norm("/healthz"), "/healthz");
	CHECK_EQ_STR(norm("/getUserById"), "/getUserById");
	CHECK_EQ_STR(norm("/qZxKwPmTvB"), "/qZxKwPmTvB");
	CHECK_EQ_STR(norm("/xkqwvbzp"), "/xkqwvbzp");
	/* Words and short versions survive. */
	CHECK_EQ_STR(norm("/api/v2/health"), "/api/v2/health");
	CHECK_EQ_STR(norm("/static/css/main.css"), "/static/css/main.css");
	CHECK_EQ_STR(norm("/{id}"), "/{id}");
}

static void test_cutoffs(void)
{
	char in[256], want[256];

	/* Exactly ROUTE_MAX_SEGMENTS segments: kept whole. */
	in[0] = want[0] = '\0';
	for (int i = 0; i < ROUTE_MAX_SEGMENTS; i++)
		strcat(in, "/a");
	strcpy(want, in);
	CHECK_EQ_STR(norm(in), want);
	strcat(in, "/");
	CHECK_EQ_STR(norm(in), in);
	/* One more: the rest becomes the ROUTE_CUT marker. */
	strcat(in, "b/c/d");
	strcat(want, ROUTE_CUT);
	CHECK_EQ_STR(norm(in), want);

	/* outsz bounds: cut at a segment boundary, marker always fits. */
	CHECK_EQ_STR(norm_sz("/users/123/orders", 20), "/users/{id}/orders");
	CHECK_EQ_STR(norm_sz("/users/123/orders", 19), "/users/{id}/orders");
	CHECK_EQ_STR(norm_sz("/users/123/orders", 18), "/users/{id}/*");
	CHECK_EQ_STR(norm_sz("/users/123/orders", 14), "/users/{id}/*");
	CHECK_EQ_STR(norm_sz("/users/123/orders", 13), "/users/*");
	CHECK_EQ_STR(norm_sz("/users/123/orders", 9), "/users/*");
	CHECK_EQ_STR(norm_sz("/users/123/orders", 8), "/*");
	CHECK_EQ_STR(norm_sz("/users/123/orders", 3), "/*");
	CHECK_EQ_STR(norm_sz("/users/123/orders", 2), "/");
	CHECK_EQ_STR(norm_sz("/abc", 5), "/abc");
	CHECK_EQ_STR(norm_sz("/abc", 4), "/*");
	CHECK_EQ_STR(norm_sz("/abc/", 6), "/abc/");
	CHECK_EQ_STR(norm_sz("/abc/", 5), "/*");
	CHECK_EQ_STR(norm_sz("/", 2), "/");
	CHECK_EQ_STR(norm_sz("*", 2), "*");
	CHECK_EQ_STR(norm_sz("", 2), "/");
	CHECK_EQ_STR(norm_sz("/a", 1), "");

	memset(rbuf, 'X', sizeof(rbuf));
	CHECK_EQ_INT(route__normalize("/a", 2, rbuf, 0), 0);
	CHECK(rbuf[0] == 'X');

	/* A very long single segment is cut, not truncated mid-way. */
	memset(in, 'z', sizeof(in) - 1);
	in[0] = '/';
	in[sizeof(in) - 1] = '\0';
	CHECK_EQ_STR(norm_sz(in, 64), "/*");
}

/* Fixed-seed xorshift so a failure reproduces. */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 32);
}

static void test_garbage(void)
{
	static const char alpha[] = "//////??##**:.%0123456789abcdefABCDEF-_=+xyzhttp";
	char in[400], out[300], again[300];
	int bad = 0;

	for (int iter = 0; iter < 200000; iter++) {
		size_t len = rnd() % sizeof(in);
		size_t outsz = rnd() % 4 ? 2 + rnd() % 80 : sizeof(out) - 8;
		int mode = rnd() % 3;
		size_t n, n2;

		for (size_t i = 0; i < len; i++) {
			if (mode == 0)	/* printable ASCII */
				in[i] = (char)(32 + rnd() % 95);
			else if (mode == 1)	/* any byte but NUL */
				in[i] = (char)(1 + rnd() % 255);
			else	/* path-ish */
				in[i] = alpha[rnd() % (sizeof(alpha) - 1)];
		}
		if (mode == 2 && len > 8 && rnd() % 2)
			memcpy(in, "http://", 7);
		memset(out, 'X', sizeof(out));
		n = route__normalize(in, len, out, outsz);
		if (n >= outsz || out[n] != '\0' || strlen(out) != n ||
		    out[outsz] != 'X' || (out[0] != '/' && out[0] != '*') ||
		    strstr(out, "//") || strchr(out, '?') || strchr(out, '#')) {
			bad++;
			continue;
		}
		/* Output is a fixed point: normalising it changes nothing. */
		n2 = route__normalize(out, n, again, outsz);
		if (n2 != n || strcmp(again, out) != 0)
			bad++;
		/* Segment bound: at most 16 segments plus the "*" marker. */
		{
			int slashes = 0;

			for (size_t i = 0; i < n; i++)
				slashes += out[i] == '/';
			if (slashes > ROUTE_MAX_SEGMENTS + 2)
				bad++;
		}
	}
	CHECK_EQ_INT(bad, 0);
}

int main(void)
{
	test_examples();
	test_forms();
	test_id_rules();
	test_cutoffs();
	test_garbage();
	return check_summary("test_route");
}
