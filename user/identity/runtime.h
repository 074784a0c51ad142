/* Container runtimes sonde asks for a container's metadata, over their own
 * local sockets (never the Kubernetes API server). Called on the identity
 * worker thread only; every call is bounded by opts->timeout_ms. */
#ifndef SONDE_IDENTITY_RUNTIME_H
#define SONDE_IDENTITY_RUNTIME_H

#include <stddef.h>

#include "identity/identity.h"

/* The socket configured for containers of rt, or NULL (none: no lookup). */
const char *runtime__socket(const struct ident_opts *o, enum ident_runtime rt);
/* A name for rt's logs and metrics ("containerd", "docker", ...). */
const char *runtime__name(enum ident_runtime rt);
/* cid's labels into k (the kubelet's and, from the pod's sandbox, the pod's)
 * and its runtime name into name. 0; -ENOENT when the runtime does not know
 * cid; -ETIMEDOUT; -ECONNREFUSED/-ENOENT-like errno when the socket is
 * absent (reported as -EHOSTDOWN); -EPROTO when the answer is not gRPC or
 * not the message expected. */
int runtime__lookup(enum ident_runtime rt, const struct ident_opts *o, const char *cid,
		    struct ident_k8s *k, char *name, size_t n);

/* containerd (containerd.c): one unary gRPC call. path is the method
 * ("/containerd.services.containers.v1.Containers/Get"); the answer's
 * message bytes into *resp (malloc'd). 0, or as runtime__lookup. */
int containerd__call(const char *sock, const char *ns, const char *path, const void *req,
		     size_t reqlen, void **resp, size_t *resplen, unsigned int timeout_ms);

/* Docker or podman (docker.c): GET /containers/<cid>/json on sock; name
 * gets the container's name, k its labels. 0, or as runtime__lookup
 * (-ENOTSUP when libcurl cannot be loaded). */
int docker__lookup(const char *sock, const char *cid, struct ident_k8s *k, char *name, size_t n,
		   unsigned int timeout_ms);

/* GET path (e.g. "/info") over the HTTP API on unix socket sock (docker.c,
 * libcurl): the body (malloc'd, NUL-terminated, n bytes) of a 200 answer.
 * 0; -ENOENT on 404; -EHOSTDOWN, -ETIMEDOUT, -EPROTO, -EMSGSIZE (over
 * 1 MiB), -ENOTSUP (no libcurl). */
int runtime__http_get(const char *sock, const char *path, unsigned int timeout_ms, char **body,
		      size_t *n);

/* CRI-O (crio.c): GET /containers/<cid> on its info socket; the kubelet's
 * labels, then the pod's labels and annotations from its sandbox's entry
 * (GET /containers/<sandbox>); name gets CRI-O's container name. 0, or as
 * runtime__lookup. */
int crio__lookup(const char *sock, const char *cid, struct ident_k8s *k, char *name, size_t n,
		 unsigned int timeout_ms);

#endif
