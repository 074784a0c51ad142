/* HTTPS client linked statically against OpenSSL (libssl.a/libcrypto.a), for
 * test_tls.py: sonde must find SSL_write in the executable itself. Waits for
 * a line on stdin (the agent probes it meanwhile), then GETs each path on
 * its own connection (Connection: close) and prints each status. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

static int get(SSL_CTX *ctx, int port, const char *path)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	char req[512], buf[4096], resp[256] = "";
	size_t have = 0;
	int fd, n, status = -1;
	SSL *ssl;

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
		return -1;
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) == 1) {
		snprintf(req, sizeof(req),
			 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
		SSL_write(ssl, req, (int)strlen(req));
		while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0)
			if (have < sizeof(resp) - 1) {
				size_t k = (size_t)n < sizeof(resp) - 1 - have ? (size_t)n
									 : sizeof(resp) - 1 - have;
				memcpy(resp + have, buf, k);
				have += k;
			}
		if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
			status = -1;
		SSL_shutdown(ssl);
	}
	SSL_free(ssl);
	close(fd);
	return status;
}

int main(int argc, char **argv)
{
	SSL_CTX *ctx;
	char line[16];

	if (argc < 3)
		return 2;
	ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (!fgets(line, sizeof(line), stdin))
		return 2;
	for (int i = 2; i < argc; i++)
		printf("%d\n", get(ctx, atoi(argv[1]), argv[i]));
	SSL_CTX_free(ctx);
	return 0;
}
