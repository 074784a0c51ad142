/* Per-service route budgets (see routes.h). Two open-addressing tables of
 * 64-bit hashes, both bounded: services (fixed size) and the (service,
 * route) pairs admitted so far (grows by doubling up to max_routes). Only
 * hashes are kept; two different pairs with the same 64-bit hash would
 * share a slot, one extra series at worst, with odds of about n²/2^65. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "signals/routes.h"

struct routes_svc {
	uint64_t hash;		/* 0: empty slot */
	uint32_t nroutes;	/* routes admitted for this service */
	uint32_t reserved;
};

struct routes {
	uint32_t per_service;
	uint32_t max_services, nservices;
	struct routes_svc *svc;	/* 2 * max_services slots, rounded up to 2^k */
	size_t svc_mask;
	struct routes_svc shared;	/* every service after max_services */
	uint64_t *set;		/* admitted (service, route) hashes; 0: empty */
	size_t set_mask, nroutes, max_routes, max_slots;
	uint64_t seed;		/* per run, so slots cannot be predicted from outside */
	uint64_t collapsed;
	/* The last pair admitted or found: consecutive spans mostly share it
	 * (one hot route), and two strcmp are cheaper than two hashes. */
	char last_service[64];
	char last_route[256];
};

static size_t pow2_at_least(size_t n)
{
	size_t p = 16;

	while (p < n)
		p <<= 1;
	return p;
}

/* FNV-1a, then splitmix64's finaliser so the low bits (the slot) depend on
 * every byte. Never 0, which marks an empty slot. */
static uint64_t hash_str(const char *s, uint64_t seed)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h ? h : 1;
}

int routes__new(struct routes **out, const struct routes_opts *o)
{
	struct routes *r;

	if (!o->per_service || !o->max_routes)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->last_service[0] = '\1';	/* nothing admitted yet: matches no service */
	r->per_service = o->per_service;
	r->max_services = o->max_services ? o->max_services : ROUTES_MAX_SERVICES;
	r->svc_mask = pow2_at_least(2 * (size_t)r->max_services) - 1;
	r->max_routes = o->max_routes;
	r->max_slots = pow2_at_least(2 * o->max_routes);
	r->set_mask = (r->max_slots < 256 ? r->max_slots : 256) - 1;
	r->svc = calloc(r->svc_mask + 1, sizeof(*r->svc));
	r->set = calloc(r->set_mask + 1, sizeof(*r->set));
	if (!r->svc || !r->set) {
		routes__free(r);
		return -ENOMEM;
	}
	if (getrandom(&r->seed, sizeof(r->seed), GRND_NONBLOCK) != sizeof(r->seed))
		r->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL;
	*out = r;
	return 0;
}

void routes__free(struct routes *r)
{
	if (!r)
		return;
	free(r->svc);
	free(r->set);
	free(r);
}

static struct routes_svc *svc_get(struct routes *r, uint64_t h)
{
	size_t i = h & r->svc_mask;

	while (r->svc[i].hash) {
		if (r->svc[i].hash == h)
			return &r->svc[i];
		i = (i + 1) & r->svc_mask;
	}
	if (r->nservices == r->max_services)
		return &r->shared;
	r->nservices++;
	r->svc[i].hash = h;
	return &r->svc[i];
}

/* Slot of h: where it is, or the empty slot where it would go. */
static size_t set_slot(const uint64_t *set, size_t mask, uint64_t h)
{
	size_t i = h & mask;

	while (set[i] && set[i] != h)
		i = (i + 1) & mask;
	return i;
}

/* Doubles the set (load stays <= 1/2). On ENOMEM it stays as it is and
 * fills up to its current size instead. */
static void set_grow(struct routes *r)
{
	size_t mask = r->set_mask * 2 + 1;
	uint64_t *set = calloc(mask + 1, sizeof(*set));

	if (!set)
		return;
	for (size_t i = 0; i <= r->set_mask; i++)
		if (r->set[i])
			set[set_slot(set, mask, r->set[i])] = r->set[i];
	free(r->set);
	r->set = set;
	r->set_mask = mask;
}

/* a == b, inline: a call per compare (strcmp) cost more than comparing
 * a short route and service name, twice per span. */
static inline bool str_same(const char *a, const char *b)
{
	for (; *a == *b; a++, b++)
		if (!*a)
			return true;
	return false;
}

/* Remembers an admitted pair for the shortcut (not when it does not fit). */
static void last_set(struct routes *r, const char *service, const char *route)
{
	size_t sn = strlen(service), rn = strlen(route);

	if (sn >= sizeof(r->last_service) || rn >= sizeof(r->last_route)) {
		r->last_route[0] = '\0';
		r->last_service[0] = '\1';	/* matches no service */
		return;
	}
	memcpy(r->last_service, service, sn + 1);
	memcpy(r->last_route, route, rn + 1);
}

const char *routes__label(struct routes *r, const char *service, const char *route)
{
	uint64_t sh, rh;
	struct routes_svc *v;
	size_t i;

	if (!service)
		service = "";
	if (str_same(route, r->last_route) && str_same(service, r->last_service))
		return route;	/* admitted pairs stay admitted */
	sh = hash_str(service, r->seed);
	rh = hash_str(route, sh);
	i = set_slot(r->set, r->set_mask, rh);
	if (r->set[i]) {
		last_set(r, service, route);
		return route;
	}
	v = svc_get(r, sh);
	if (v->nroutes >= r->per_service) {
		r->collapsed++;
		return ROUTES_OVERFLOW;
	}
	/* Table full: the registry's own cap decides (see routes.h). */
	if (r->nroutes >= r->max_routes)
		return route;
	if ((r->nroutes + 1) * 2 > r->set_mask + 1) {
		if (r->set_mask + 1 < r->max_slots)
			set_grow(r);
		if ((r->nroutes + 1) * 2 > r->set_mask + 1)
			return route;
		i = set_slot(r->set, r->set_mask, rh);
	}
	r->set[i] = rh;
	r->nroutes++;
	v->nroutes++;
	last_set(r, service, route);
	return route;
}

uint64_t routes__collapsed(const struct routes *r)
{
	return r->collapsed;
}
