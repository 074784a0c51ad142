/* containerd's containers API over its unix socket: gRPC (HTTP/2 by
 * libnghttp2's client session, messages by protobuf-c from
 * proto/containerd.proto), non-blocking with one deadline per call, so a
 * socket that hangs or answers garbage costs at most the timeout, on the
 * identity worker thread. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "containerd.pb-c.h"
#include "identity/runtime.h"

#define RESP_MAX (1024 * 1024)	/* a container list answer larger than this is refused */

struct call {
	int fd;
	int32_t stream;
	const uint8_t *req;		/* gRPC frame: 5-byte prefix + message */
	size_t reqlen, reqoff;
	uint8_t *resp;
	size_t resplen;
	bool closed, too_big;
	int grpc_status;		/* -1 until the trailers say */
	int http_status;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static ssize_t on_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *arg)
{
	struct call *c = arg;
	ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);

	(void)s, (void)flags;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return NGHTTP2_ERR_WOULDBLOCK;
	return n < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : n;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t stream, const uint8_t *data, size_t len,
		   void *arg)
{
	struct call *c = arg;
	uint8_t *p;

	(void)s, (void)flags;
	if (stream != c->stream)
		return 0;
	if (c->resplen + len > RESP_MAX) {
		c->too_big = true;
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	p = realloc(c->resp, c->resplen + len);
	if (!p)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	memcpy(p + c->resplen, data, len);
	c->resp = p;
	c->resplen += len;
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		     const uint8_t *value, size_t vlen, uint8_t flags, void *arg)
{
	struct call *c = arg;
	char v[16];

	(void)s, (void)flags;
	if (f->hd.stream_id != c->stream || vlen >= sizeof(v))
		return 0;
	memcpy(v, value, vlen);
	v[vlen] = 0;
	if (nlen == 11 && memcmp(name, "grpc-status", 11) == 0)
		c->grpc_status = atoi(v);
	else if (nlen == 7 && memcmp(name, ":status", 7) == 0)
		c->http_status = atoi(v);
	return 0;
}

static int on_close(nghttp2_session *s, int32_t stream, uint32_t code, void *arg)
{
	struct call *c = arg;

	(void)s, (void)code;
	if (stream == c->stream)
		c->closed = true;
	return 0;
}

static ssize_t body(nghttp2_session *s, int32_t stream, uint8_t *buf, size_t len, uint32_t *flags,
		    nghttp2_data_source *src, void *arg)
{
	struct call *c = arg;
	size_t n = c->reqlen - c->reqoff;

	(void)s, (void)stream, (void)src;
	if (n > len)
		n = len;
	memcpy(buf, c->req + c->reqoff, n);
	c->reqoff += n;
	if (c->reqoff == c->reqlen)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int connect_unix(const char *path, uint64_t deadline)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err = 0;
	socklen_t el = sizeof(err);

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	if (errno != EAGAIN && errno != EINPROGRESS) {
		err = errno;
		close(fd);
		return err == ENOENT || err == ECONNREFUSED ? -EHOSTDOWN : -err;
	}
	{
		uint64_t t = now_ms();
		struct pollfd p = { .fd = fd, .events = POLLOUT };

		if (t >= deadline || poll(&p, 1, (int)(deadline - t)) <= 0) {
			close(fd);
			return -ETIMEDOUT;
		}
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) || err) {
		close(fd);
		return -EHOSTDOWN;
	}
	return fd;
}

/* The message of a gRPC answer: one uncompressed length-prefixed frame. */
static int unframe(struct call *c, void **resp, size_t *resplen)
{
	size_t n;

	if (c->resplen < 5 || c->resp[0] != 0)
		return -EPROTO;
	n = (size_t)c->resp[1] << 24 | (size_t)c->resp[2] << 16 | (size_t)c->resp[3] << 8 | c->resp[4];
	if (n != c->resplen - 5)
		return -EPROTO;
	memmove(c->resp, c->resp + 5, n);
	*resp = c->resp;
	*resplen = n;
	c->resp = NULL;
	return 0;
}

int containerd__call(const char *sock, const char *ns, const char *path, const void *req,
		     size_t reqlen, void **resp, size_t *resplen, unsigned int timeout_ms)
{
	struct call c = { .fd = -1, .grpc_status = -1 };
	uint64_t deadline = now_ms() + timeout_ms;
	nghttp2_session_callbacks *cb = NULL;
	nghttp2_session *s = NULL;
	nghttp2_data_provider dp = { .read_callback = body };
	uint8_t *frame = malloc(reqlen + 5), buf[16384];
	const nghttp2_nv hdrs[] = {
#define NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE }
		NV(":method", "POST"), NV(":scheme", "http"), NV(":path", path),
		NV(":authority", "containerd"), NV("content-type", "application/grpc"),
		NV("te", "trailers"), NV("containerd-namespace", ns),
#undef NV
	};
	int rc = -EPROTO;

	*resp = NULL;
	*resplen = 0;
	if (!frame)
		return -ENOMEM;
	frame[0] = 0;
	frame[1] = (uint8_t)(reqlen >> 24), frame[2] = (uint8_t)(reqlen >> 16);
	frame[3] = (uint8_t)(reqlen >> 8), frame[4] = (uint8_t)reqlen;
	memcpy(frame + 5, req, reqlen);
	c.req = frame;
	c.reqlen = reqlen + 5;
	if ((c.fd = connect_unix(sock, deadline)) < 0) {
		rc = c.fd;
		goto cleanup;
	}
	if (nghttp2_session_callbacks_new(&cb)) {
		rc = -ENOMEM;
		goto cleanup;
	}
	nghttp2_session_callbacks_set_send_callback(cb, on_send);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
	if (nghttp2_session_client_new(&s, cb, &c) ||
	    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0) ||
	    (c.stream = nghttp2_submit_request(s, NULL, hdrs, sizeof(hdrs) / sizeof(hdrs[0]), &dp, &c)) < 0) {
		rc = -ENOMEM;
		goto cleanup;
	}
	while (!c.closed) {
		struct pollfd p = { .fd = c.fd, .events = POLLIN };
		uint64_t t = now_ms();
		ssize_t n;
		int pr;

		if (nghttp2_session_send(s)) {
			rc = -EPROTO;
			goto cleanup;
		}
		/* a connection error (not HTTP/2, a bad frame): nghttp2 has sent
		 * its GOAWAY and wants nothing more; the stream will never close */
		if (!nghttp2_session_want_read(s) && !nghttp2_session_want_write(s)) {
			rc = -EPROTO;
			goto cleanup;
		}
		if (nghttp2_session_want_write(s))
			p.events |= POLLOUT;
		if (t >= deadline) {
			rc = -ETIMEDOUT;
			goto cleanup;
		}
		pr = poll(&p, 1, (int)(deadline - t));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			rc = pr == 0 ? -ETIMEDOUT : -errno;
			goto cleanup;
		}
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = recv(c.fd, buf, sizeof(buf), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {	/* the runtime hung up before answering */
			rc = -EPROTO;
			goto cleanup;
		}
		if (nghttp2_session_mem_recv(s, buf, (size_t)n) < 0) {
			rc = c.too_big ? -EMSGSIZE : -EPROTO;
			goto cleanup;
		}

	}
	if (c.grpc_status == 5)		/* NOT_FOUND */
		rc = -ENOENT;
	else if (c.http_status != 200 || c.grpc_status != 0)
		rc = -EPROTO;
	else
		rc = unframe(&c, resp, resplen);
cleanup:
	if (s)
		nghttp2_session_del(s);
	if (cb)
		nghttp2_session_callbacks_del(cb);
	if (c.fd >= 0)
		close(c.fd);
	free(c.resp);
	free(frame);
	return rc;
}

static void take_labels(const Containerd__Services__Containers__V1__Container *ct, struct ident_k8s *k)
{
	for (size_t i = 0; i < ct->n_labels; i++)
		if (ct->labels[i]->key && ct->labels[i]->value)
			ident__k8s_label(k, ct->labels[i]->key, ct->labels[i]->value);
}

/* The pod's own labels sit on its sandbox container (the CRI plugin puts
 * them there); found by the pod uid. Best effort: the container's answer
 * stands without it. */
static void sandbox_labels(const struct ident_opts *o, struct ident_k8s *k)
{
	Containerd__Services__Containers__V1__ListContainersRequest req =
		CONTAINERD__SERVICES__CONTAINERS__V1__LIST_CONTAINERS_REQUEST__INIT;
	Containerd__Services__Containers__V1__ListContainersResponse *r;
	char filter[160], *filters[1] = { filter };
	uint8_t out[256];
	void *resp;
	size_t n;
	struct ident_k8s sb = { 0 };

	snprintf(filter, sizeof(filter),
		 "labels.\"io.kubernetes.pod.uid\"==%s,labels.\"io.cri-containerd.kind\"==sandbox", k->pod_uid);
	req.n_filters = 1;
	req.filters = filters;
	if (containerd__services__containers__v1__list_containers_request__get_packed_size(&req) > sizeof(out))
		return;
	n = containerd__services__containers__v1__list_containers_request__pack(&req, out);
	if (containerd__call(o->containerd_sock, o->containerd_ns, "/containerd.services.containers.v1.Containers/List",
			     out, n, &resp, &n, o->timeout_ms))
		return;
	r = containerd__services__containers__v1__list_containers_response__unpack(NULL, n, resp);
	free(resp);
	if (!r)
		return;
	if (r->n_containers)
		take_labels(r->containers[0], &sb);
	containerd__services__containers__v1__list_containers_response__free_unpacked(r, NULL);
	/* pod labels only: the container's own answer keeps its fields */
	memcpy(k->app_name, sb.app_name, sizeof(k->app_name));
	memcpy(k->pod_template_hash, sb.pod_template_hash, sizeof(k->pod_template_hash));
	memcpy(k->revision_hash, sb.revision_hash, sizeof(k->revision_hash));
	memcpy(k->statefulset_pod, sb.statefulset_pod, sizeof(k->statefulset_pod));
	memcpy(k->job_name, sb.job_name, sizeof(k->job_name));
}

static int containerd_lookup(const struct ident_opts *o, const char *cid, struct ident_k8s *k)
{
	Containerd__Services__Containers__V1__GetContainerRequest req =
		CONTAINERD__SERVICES__CONTAINERS__V1__GET_CONTAINER_REQUEST__INIT;
	Containerd__Services__Containers__V1__GetContainerResponse *r;
	uint8_t out[128];
	void *resp;
	size_t n;
	int err;

	req.id = (char *)cid;
	n = containerd__services__containers__v1__get_container_request__pack(&req, out);
	err = containerd__call(o->containerd_sock, o->containerd_ns,
			       "/containerd.services.containers.v1.Containers/Get", out, n, &resp, &n,
			       o->timeout_ms);
	if (err)
		return err;
	r = containerd__services__containers__v1__get_container_response__unpack(NULL, n, resp);
	free(resp);
	if (!r)
		return -EPROTO;
	if (r->container)
		take_labels(r->container, k);
	containerd__services__containers__v1__get_container_response__free_unpacked(r, NULL);
	if (k->known && k->pod_uid[0])
		sandbox_labels(o, k);
	return 0;
}

const char *runtime__socket(const struct ident_opts *o, enum ident_runtime rt)
{
	const char *s = NULL;

	/* a bare id under kubepods is taken as containerd's (cgroupfs driver) */
	if (rt == IDENT_RT_CONTAINERD)
		s = o->containerd_sock;
	else if (rt == IDENT_RT_DOCKER)
		s = o->docker_sock;
	else if (rt == IDENT_RT_PODMAN)
		s = o->podman_sock;
	else if (rt == IDENT_RT_CRIO)
		s = o->crio_sock;
	return s && s[0] ? s : NULL;
}

int runtime__lookup(enum ident_runtime rt, const struct ident_opts *o, const char *cid,
		    struct ident_k8s *k, char *name, size_t n)
{
	const char *sock = runtime__socket(o, rt);

	if (n)
		name[0] = 0;
	if (!sock)
		return -ENOTSUP;
	if (rt == IDENT_RT_CONTAINERD)
		return containerd_lookup(o, cid, k);
	if (rt == IDENT_RT_CRIO)
		return crio__lookup(sock, cid, k, name, n, o->timeout_ms);
	return docker__lookup(sock, cid, k, name, n, o->timeout_ms);
}
